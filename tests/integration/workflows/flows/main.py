"""Flows that exercise the step log: every kind of step, retries in place, a killed attempt."""

import asyncio
import os
import time
from datetime import datetime
from pathlib import Path

from conveyor import FlowContext, Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=2, wait_duration_ms=0))
SCRATCH = Path(os.environ.get("ENGINE_SCRATCH", "/tmp"))


def _ran(name: str) -> int:
    """Counts a body's runs by its side effect: one line per run in the scratch folder."""
    path = SCRATCH / f"{name}.ran"
    with path.open("a") as file:
        file.write("x\n")
    return len(path.read_text().splitlines())


def double(n: int) -> int:
    _ran("double")
    return n * 2


def flaky(n: int) -> int:
    if _ran("flaky") <= 2:
        raise RuntimeError(f"flaky failure {n}")
    return n + 100


def first(n: int) -> int:
    _ran("first")
    return n + 1


async def slow(n: int) -> int:
    runs = _ran("slow")
    if runs == 1:  # the first run waits to be killed; the run after the kill goes through
        (SCRATCH / "slow.waiting").touch()
        await asyncio.sleep(120)
    return n * 3


def last(n: int) -> int:
    _ran("last")
    return n - 1


@app.task
def add_one(n: int) -> int:
    return n + 1


@app.flow
async def every_step(ctx: FlowContext, n: int) -> dict[str, int]:
    """An inline step, a detached one, a sleep, and an inline step that fails twice."""
    a = await ctx.step(double, n)
    b = await ctx.run(add_one, a)
    await ctx.sleep(1)
    c = await ctx.step(flaky, b, retry=Retry(max_retries=2, wait_duration_ms=10))
    return {"a": a, "b": b, "c": c}


@app.flow
async def killed_mid_step(ctx: FlowContext, n: int) -> int:
    a = await ctx.step(first, n)
    b = await ctx.step(slow, a)
    return await ctx.step(last, b)


@app.flow
async def changes_between_attempts(ctx: FlowContext, n: int) -> int:
    """Reaches a different second step in its next attempt when the scratch folder says so."""
    await ctx.step(double, n)
    if (SCRATCH / "changed").exists():
        await ctx.step(last, n)
    else:
        await ctx.step(first, n)
    await ctx.sleep(0.5)
    return n


@app.flow
async def sleeps_long(ctx: FlowContext, n: int) -> int:
    b = await ctx.run(add_one, n)
    await ctx.sleep(600)
    return b


@app.flow
async def naps(ctx: FlowContext, seconds: float) -> str:
    await ctx.sleep(seconds)
    return await ctx.step(str, seconds)


def needs_fix(n: int) -> int:
    _ran("needs_fix")
    if not (SCRATCH / "fixed").exists():
        raise ValueError("not fixed yet")
    return n + 1


@app.flow(retry=Retry(max_retries=0))
async def fails_until_fixed(ctx: FlowContext, n: int) -> int:
    a = await ctx.step(double, n)
    return await ctx.step(needs_fix, a)


@app.task
def waits(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.flow
async def sleeps_beside_a_child(ctx: FlowContext, seconds: float) -> list[float | None]:
    """A detached step still runs while the flow sleeps."""
    return list(await asyncio.gather(ctx.run(waits, seconds), ctx.sleep(seconds)))


async def held(n: int) -> int:
    """Runs once per call; waits until the test releases it."""
    _ran("held")
    (SCRATCH / "held.waiting").touch()
    while not (SCRATCH / "release").exists():
        await asyncio.sleep(0.05)
    return n * 3


@app.flow
async def waits_for_release(ctx: FlowContext, n: int) -> int:
    a = await ctx.step(first, n)
    b = await ctx.step(held, a)
    return await ctx.step(last, b)


async def slow_echo(value: str, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return value


@app.flow
async def gathers(ctx: FlowContext, n: int) -> list[str]:
    """Steps started together, finishing in another order; replayed after a sleep."""
    together = await asyncio.gather(
        ctx.step(slow_echo, "a", 0.3), ctx.step(slow_echo, "b", 0.0), ctx.step(slow_echo, "c", 0.1)
    )
    await ctx.sleep(0.2)
    return [*together, await ctx.step(slow_echo, "d", 0.0)]


@app.flow
async def sleeps_until(ctx: FlowContext, when: str) -> str:
    await ctx.sleep_until(datetime.fromisoformat(when))
    return await ctx.step(str, when)


@app.flow
async def doubles_twice(ctx: FlowContext, n: int) -> int:
    """Two inline steps; the second is new to the log, so it is recorded with its result."""
    a = await ctx.step(double, n)
    return await ctx.step(double, a)


def pad(text: str, times: int) -> str:
    _ran("pad")
    return text * times


@app.flow
async def large_payloads(ctx: FlowContext, times: int) -> int:
    """A step whose input and result are past the blob store's inline size, replayed after a
    sleep; then a new step whose input is that result."""
    padded = await ctx.step(pad, "ab" * 40_000, times)
    await ctx.sleep(0.1)
    return await ctx.step(len, padded)
