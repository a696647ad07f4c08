"""Hello, Conveyor: chaining, fan-out, retries and a long sleeper.

conveyor dev examples/hello
conveyor run hello/add_squares 3 4 --wait
"""

import asyncio
import random
import time

from conveyor import Retry, TaskContext, Workflows

app = Workflows(default_retry=Retry(max_retries=2, wait_duration_ms=500, backoff_scaling=2.0))


@app.task
def square(a: int) -> int:
    """The square of `a`."""
    return a * a


@app.task(timeout_seconds=60, plan="starter")
async def add_squares(ctx: TaskContext, a: int, b: int) -> int:
    """a² + b², each square computed by its own child run."""
    x, y = await asyncio.gather(ctx.run(square, a), ctx.run(square, b))
    return x + y


@app.task
async def sum_of_squares(numbers: list[int]) -> int:
    """Fans out one child run per number (0.x call style: `await square(n)`)."""
    squares = await asyncio.gather(*(square(n) for n in numbers))
    return sum(squares)


@app.task(retry=Retry(max_retries=5, wait_duration_ms=200, backoff_scaling=1.5))
def flaky(chance_of_failure: float = 0.5) -> str:
    """Fails at random; retries with backoff until it succeeds or runs out of retries."""
    if random.random() < chance_of_failure:
        raise RuntimeError("the dice said no")
    return "made it"


@app.task(timeout_seconds=3600)
def sleeper(seconds: float = 30.0) -> float:
    """Sleeps, printing progress: a run to watch, follow the logs of, or cancel."""
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        print(f"slept {elapsed:.0f} of {seconds:.0f} s", flush=True)
        time.sleep(min(1.0, seconds - elapsed))
    return seconds
