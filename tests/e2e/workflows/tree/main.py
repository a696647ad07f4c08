"""A tree of runs for the dashboard's tests: branches of leaves, some failing, some retried.

`pipeline` starts `branches` children, each of which starts `width` leaves; the leaf numbered
`fail_on` fails every attempt (so it is retried once, then fails its branch and the pipeline).
"""

import asyncio
import time

from conveyor import Retry, TaskContext, Workflows

app = Workflows(default_retry=Retry(max_retries=1, wait_duration_ms=400, backoff_scaling=1.0))


def check(n: int, fail_on: int) -> None:
    if n == fail_on:
        raise ValueError(f"leaf {n} refuses to work")


@app.task
def leaf(n: int, fail_on: int = -1, seconds: float = 0.0) -> int:
    print(f"leaf {n}: starting", flush=True)
    time.sleep(seconds)
    check(n, fail_on)
    print(f"leaf {n}: done", flush=True)
    return n * n


@app.task
async def branch(
    ctx: TaskContext, numbers: list[int], fail_on: int = -1, seconds: float = 0.0
) -> int:
    squares = await asyncio.gather(*(ctx.run(leaf, n, fail_on, seconds) for n in numbers))
    return sum(squares)


@app.task(retry=Retry(max_retries=0, wait_duration_ms=100))
async def pipeline(
    ctx: TaskContext, branches: int = 2, width: int = 2, fail_on: int = -1, seconds: float = 0.0
) -> int:
    groups = [list(range(b * width, (b + 1) * width)) for b in range(branches)]
    totals = await asyncio.gather(*(ctx.run(branch, g, fail_on, seconds) for g in groups))
    return sum(totals)


@app.task(concurrency=1)
def solo(seconds: float) -> float:
    """One at a time: the queue shows the others waiting for their task's limit."""
    time.sleep(seconds)
    return seconds
