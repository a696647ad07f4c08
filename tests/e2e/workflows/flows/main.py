"""A flow for the dashboard's tests, held where the test says so that its page can be watched
step by step: an inline step, a detached step held until a file exists, a sleep, an inline step.
"""

import time
from pathlib import Path

from conveyor import FlowContext, Workflows

app = Workflows()


def prepare(n: int) -> int:
    return n + 1


def finish(text: str) -> str:
    return text.upper()


@app.task
def held(gate: str) -> str:
    """Waits until the test creates `gate`."""
    while not Path(gate).exists():
        time.sleep(0.05)
    return "released"


@app.flow
async def staged(ctx: FlowContext, gate: str, nap: float) -> str:
    n = await ctx.step(prepare, 1)
    released = await ctx.run(held, gate)
    await ctx.sleep(nap)
    return await ctx.step(finish, f"{released} {n}")
