"""News of a flow run's step log: listeners (the dashboard's live pages, in this process or,
through PostgreSQL's NOTIFY, in another) hear that the run changed as its steps are written.

A flow may record hundreds of steps a second; its news goes out at most once per `INTERVAL_S` per
run, and the last write of a burst is always told (a trailing announcement), so a page never
stays behind a step for longer than that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Connection, select

from core.domain import RunStatus
from scheduler.runs.rows import changed, runs
from scheduler.runs.writes import Changes, Writer

logger = logging.getLogger(__name__)

INTERVAL_S = 0.5

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class StepNews:
    """Announces flow runs whose step log changed, each at most once per `interval`."""

    def __init__(
        self,
        writer: Writer,
        *,
        interval: float = INTERVAL_S,
        clock: Clock | None = None,  # None: the event loop's
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._writer = writer
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._last: dict[str, float] = {}  # when each run was last announced
        self._coming: set[str] = set()  # runs with an announcement scheduled
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak ones

    def written(self, run_id: str) -> None:
        """A step of `run_id` was written: announce it now, or once the interval is over."""
        if run_id in self._coming:
            return  # the announcement already scheduled will tell this write too
        now = self._now()
        due = self._last.get(run_id, now - self._interval) + self._interval
        self._coming.add(run_id)
        task = asyncio.create_task(self._announce(run_id, max(0.0, due - now)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce(self, run_id: str, delay: float) -> None:
        try:
            if delay > 0:
                await self._sleep(delay)
            told = self._last[run_id] = self._now()
            self._coming.discard(run_id)  # a write from now on is told by another announcement
            await self._tell(run_id)
        finally:
            self._coming.discard(run_id)
        # forgotten once quiet: a long-lived control plane runs many flows
        await self._sleep(self._interval)
        if self._last.get(run_id) == told:
            del self._last[run_id]

    async def close(self) -> None:
        """Ends the waits: what was still to be told is told now, and nothing is forgotten later
        (a stopping control plane leaves no task behind)."""
        coming = set(self._coming)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._coming.clear()
        for run_id in sorted(coming):
            await self._tell(run_id)

    async def _tell(self, run_id: str) -> None:
        try:
            await self._writer.run(lambda conn, changes: _run_changed(conn, changes, run_id))
        except Exception:  # news only: the steps are written; a page catches up at the next
            logger.warning("flow run %s: its steps' news was not sent", run_id, exc_info=True)

    def _now(self) -> float:
        return (self._clock or asyncio.get_running_loop().time)()


def _run_changed(conn: Connection, changes: Changes, run_id: str) -> None:
    run: Any = conn.execute(
        select(runs.c.id, runs.c.root_id, runs.c.parent_id, runs.c.status).where(
            runs.c.id == run_id
        )
    ).first()
    if run is not None and not RunStatus(run.status).terminal:
        changes.add(changed(run, run.status))
