"""A workflow written with Render's official SDK 0.8 (await-style children)."""

import asyncio

from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


@app.task
def double(x: int) -> int:
    return x * 2


@app.task
async def double_all(values: list[int]) -> list[int]:
    return list(await asyncio.gather(*(double(v) for v in values)))


@app.task
async def chain(x: int) -> int:
    once = await double(x)
    return await double(once)


@app.task(timeout_seconds=60)
def fail(message: str) -> None:
    raise RuntimeError(message)
