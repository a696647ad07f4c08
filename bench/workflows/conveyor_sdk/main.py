"""The bench's workflow in Conveyor's SDK: a no-op `add`, a fan-out and a chain of children.

Started by the harness as `conveyor dev <copy> --start-command "conveyor-worker main:app"`.
"""

import asyncio
import time

from conveyor import Retry, TaskContext, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task
async def fan(ctx: TaskContext, n: int) -> int:
    """W3: one parent awaiting `n` children at once."""
    results = await asyncio.gather(*(ctx.run(add, i, i) for i in range(n)))
    return sum(results)


@app.task
async def chain(ctx: TaskContext, depth: int) -> int:
    """W4: each level awaits the next as its child; the deepest returns 1."""
    if depth <= 1:
        return 1
    below: int = await ctx.run(chain, depth - 1)
    return below + 1


@app.task
def nap(seconds: float) -> float:
    """`python -m bench.sleepers`: a run that holds its instance, asleep."""
    time.sleep(seconds)
    return seconds
