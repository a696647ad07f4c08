"""A workflow written against Render's official SDK (`render` on PyPI), run unchanged on Conveyor.

conveyor dev examples/render-sdk --start-command "render-workflows main:app"
"""

import asyncio

from render import Retry, TaskContext, Workflows

app = Workflows(default_retry=Retry(max_retries=1, wait_duration_ms=200, backoff_scaling=2.0))


@app.task
def square(ctx: TaskContext, a: int) -> int:
    return a * a


@app.task
async def add_squares(ctx: TaskContext, a: int, b: int) -> int:
    x, y = await asyncio.gather(ctx.run(square, a), ctx.run(square, b))
    return x + y


@app.task
async def sum_of_squares(ctx: TaskContext, numbers: list[int]) -> int:
    results = await asyncio.gather(*(ctx.run(square, n) for n in numbers))
    return sum(results)


@app.task
def greet(ctx: TaskContext, name: str, greeting: str = "Hello") -> str:
    return f"{greeting}, {name}!"


@app.task(retry=Retry(max_retries=0, wait_duration_ms=0))
def explode(ctx: TaskContext, message: str) -> None:
    raise ValueError(message)


@app.task(retry=Retry(max_retries=0, wait_duration_ms=0))
async def call_explode(ctx: TaskContext, message: str) -> str:
    try:
        await ctx.run(explode, message)
    except Exception as exc:
        return f"caught: {exc}"
    return "no error"
