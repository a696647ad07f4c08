"""A workflow written with Render's official SDK 1.x, untouched by Conveyor."""

import asyncio

from extra import extra
from render import Retry, TaskContext, Workflows

core = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


@core.task
def square(ctx: TaskContext, a: int) -> int:
    return a * a


@core.task
async def add_squares(ctx: TaskContext, a: int, b: int) -> int:
    x, y = await asyncio.gather(ctx.run(square, a), ctx.run(square, b))
    return x + y


@core.task
def greet(ctx: TaskContext, name: str, greeting: str = "Hello") -> str:
    return f"{greeting}, {name}!"


@core.task
def explode(ctx: TaskContext, message: str) -> None:
    raise ValueError(message)


@core.task
async def parent_of_failure(ctx: TaskContext, message: str) -> str:
    await ctx.run(explode, message)
    return "unreachable"


@core.task
async def catches_failure(ctx: TaskContext, message: str) -> str:
    try:
        await ctx.run(explode, message)
    except Exception as exc:
        return f"caught: {exc}"
    return "no error"


@core.task
def metadata(ctx: TaskContext) -> dict[str, str]:
    meta = ctx.metadata
    return {"id": meta.task_run_id or "", "root": meta.root_task_run_id or ""}


@core.task
def parent_of(ctx: TaskContext) -> str:
    return ctx.metadata.parent_task_run_id or ""


@core.task
async def family(ctx: TaskContext) -> dict[str, str]:
    """A child's metadata names this run as its parent and root."""
    return {"me": ctx.metadata.task_run_id or "", "childs_parent": await ctx.run(parent_of)}


@core.task
async def greet_by_keywords(ctx: TaskContext, name: str) -> str:
    return await ctx.run(greet, name=name, greeting="Hi")


@core.task
async def slow(ctx: TaskContext, seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@core.task
def fails_quietly(ctx: TaskContext) -> None:
    """Raises an exception with no message (Render's SDK sends an empty error)."""
    raise ValueError()


app = Workflows.from_workflows(core, extra)
