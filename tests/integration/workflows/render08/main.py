"""A workflow written with Render's official SDK 0.8 (await-style children)."""

import asyncio
from pathlib import Path

from render_sdk import Retry, Workflows

base = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))
more = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


@base.task
def double(x: int) -> int:
    return x * 2


@base.task
async def double_all(values: list[int]) -> list[int]:
    return list(await asyncio.gather(*(double(v) for v in values)))


@base.task
async def chain(x: int) -> int:
    once = await double(x)
    return await double(once)


@base.task(timeout_seconds=60)
def fail(message: str) -> None:
    raise RuntimeError(message)


@more.task(name="renamed", plan="starter")
def original_name(x: int) -> int:
    return x + 1


@more.task(retry=Retry(max_retries=1, wait_duration_ms=10))
def flaky_once(marker: str) -> str:
    path = Path(marker)
    if not path.exists():
        path.write_text("first attempt ran")
        raise RuntimeError("first attempt fails on purpose")
    return "second attempt made it"


app = Workflows.from_workflows(base, more)
