"""A workflow written with Render's official SDK 1.x, untouched by Conveyor."""

import asyncio

from render import Retry, TaskContext, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


@app.task
def square(ctx: TaskContext, a: int) -> int:
    return a * a


@app.task
async def add_squares(ctx: TaskContext, a: int, b: int) -> int:
    x, y = await asyncio.gather(ctx.run(square, a), ctx.run(square, b))
    return x + y


@app.task
def greet(ctx: TaskContext, name: str, greeting: str = "Hello") -> str:
    return f"{greeting}, {name}!"


@app.task
def explode(ctx: TaskContext, message: str) -> None:
    raise ValueError(message)


@app.task
async def parent_of_failure(ctx: TaskContext, message: str) -> str:
    await ctx.run(explode, message)
    return "unreachable"


@app.task
async def catches_failure(ctx: TaskContext, message: str) -> str:
    try:
        await ctx.run(explode, message)
    except Exception as exc:
        return f"caught: {exc}"
    return "no error"


@app.task
def metadata(ctx: TaskContext) -> dict[str, str]:
    meta = ctx.metadata
    return {"id": meta.task_run_id or "", "root": meta.root_task_run_id or ""}


@app.task
async def slow(ctx: TaskContext, seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds
