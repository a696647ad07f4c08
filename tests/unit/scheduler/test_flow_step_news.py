"""A flow run's step writes are told at most once per interval, the last of a burst always."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest

from scheduler.flows.news import StepNews
from scheduler.runs.writes import Writer

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _Writer:
    """Counts the transactions the news asks for (each tells one run)."""

    def __init__(self) -> None:
        self.told = 0

    async def run(self, fn: Callable[..., Any]) -> None:
        self.told += 1


class _Sleeps:
    """Sleeps that end when the test says so; the clock moves by what each slept."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waiting: list[tuple[float, asyncio.Future[None]]] = []

    async def __call__(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((seconds, future))
        await future

    async def end_first(self) -> float:
        seconds, future = self.waiting.pop(0)
        self.now += seconds
        future.set_result(None)
        await _settle()
        return seconds


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _news(writer: _Writer, sleeps: _Sleeps) -> StepNews:
    return StepNews(
        cast(Writer, writer),
        interval=0.5,
        clock=lambda: sleeps.now,
        sleep=sleeps,
    )


async def test_the_first_write_is_told_at_once_and_a_burst_after_it_once_at_the_interval() -> None:
    writer, sleeps = _Writer(), _Sleeps()
    news = _news(writer, sleeps)
    news.written("trn-1")
    await _settle()
    assert writer.told == 1
    assert [s for s, _ in sleeps.waiting] == [0.5]  # the quiet time after it
    sleeps.now += 0.1
    news.written("trn-1")
    news.written("trn-1")
    await _settle()
    assert writer.told == 1, "within the interval: scheduled, not told"
    assert [s for s, _ in sleeps.waiting] == [0.5, pytest.approx(0.4)]
    await sleeps.end_first()  # the first announcement's quiet time: it forgets nothing yet
    await sleeps.end_first()  # the trailing one is due
    assert writer.told == 2


async def test_runs_are_told_apart_and_forgotten_once_quiet() -> None:
    writer, sleeps = _Writer(), _Sleeps()
    news = _news(writer, sleeps)
    news.written("trn-1")
    news.written("trn-2")
    await _settle()
    assert writer.told == 2
    await sleeps.end_first()
    await sleeps.end_first()
    assert sleeps.waiting == []
    news.written("trn-1")  # quiet for the interval: told at once again
    await _settle()
    assert writer.told == 3


async def test_closing_tells_what_was_still_to_come_and_leaves_no_task() -> None:
    writer, sleeps = _Writer(), _Sleeps()
    news = _news(writer, sleeps)
    news.written("trn-1")
    await _settle()
    sleeps.now += 0.1
    news.written("trn-1")  # due in 0.4 s
    await _settle()
    assert writer.told == 1
    await news.close()
    assert writer.told == 2, "the scheduled announcement is told at close"
    await _settle()
    assert all(future.cancelled() for _, future in sleeps.waiting)
