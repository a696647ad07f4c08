"""The checkpoint benchmark's workflow: the same calls as a flow of inline steps and as a loop."""

import time

from conveyor import FlowContext, Workflows

app = Workflows()


def add(total: int, n: int) -> int:
    return total + n


@app.task
def plain_loop(steps: int) -> dict[str, float]:
    started = time.perf_counter()
    total = 0
    for n in range(steps):
        total = add(total, n)
    return {"total": total, "seconds": time.perf_counter() - started}


@app.flow
async def checkpointed(ctx: FlowContext, steps: int) -> dict[str, float]:
    started = time.perf_counter()
    total = 0
    for n in range(steps):
        total = await ctx.step(add, total, n)
    return {"total": total, "seconds": time.perf_counter() - started}
