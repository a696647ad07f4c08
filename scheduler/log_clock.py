"""When each part of an attempt's log arrived, by the platform's clock.

Workers write their output straight into the attempt's log (a file the executor opened for
them), so nothing stamps their lines. The clock looks at the logs of this scheduler's running
attempts a few times a second and writes down beside each log how far it had grown, and when:
the blob `<log key>.times`, one `offset milliseconds` line per growth seen. A line's time is the
first moment its log was seen holding all of it — within `interval` of when it was written.
Bytes written after the last look get the attempt's end (`runs.log_times.line_times`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from core.blobs.base import BlobStore
from core.data_dir import PRIVATE_FILE
from core.db.database import Database
from core.domain import RunStatus
from core.events import EventBus, RunChanged
from scheduler.runs.log_times import times_key
from scheduler.runs.rows import LIVE_STATES, attempts

logger = logging.getLogger(__name__)

INTERVAL = 0.25


@dataclass
class _Watched:
    run_id: str
    log_key: str
    path: str
    seen: int = 0  # bytes of the log already stamped


class LogClock:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        bus: EventBus,
        scheduler_id: Callable[[], str],
        interval: float = INTERVAL,
    ) -> None:
        self._db = db
        self._blobs = blobs
        self._scheduler_id = scheduler_id
        self._interval = interval
        self._started: set[str] = set()  # runs to look up: they just started an attempt
        self._ended: set[str] = set()  # runs whose attempt ended: last look, then let go
        self._watched: dict[str, _Watched] = {}  # by log key
        self._task: asyncio.Task[None] | None = None
        bus.add_listener(self._changed)

    def _changed(self, change: RunChanged) -> None:
        if self._task is None:
            return
        if change.status == RunStatus.RUNNING.value:
            self._started.add(change.run_id)
        else:
            self._ended.add(change.run_id)

    async def start(self) -> None:
        """Watch what already runs (after a restart), then every attempt this scheduler starts."""
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self._look, list(self._watched.values()))

    async def _run(self) -> None:
        adopted = False
        while True:
            try:
                if not adopted:  # what already runs: attempts a previous process started
                    await self._adopt(None)
                    adopted = True
                await self._tick()
            except Exception:  # a missed look costs precision, never the scheduler
                logger.exception("log clock: a look at the logs failed")
            await asyncio.sleep(self._interval)

    async def _tick(self) -> None:
        started, self._started = self._started, set()
        ended, self._ended = self._ended, set()
        if started:
            await self._adopt(started)
        if self._watched:
            await asyncio.to_thread(self._look, list(self._watched.values()))
        if ended:
            await self._release(ended)

    async def _release(self, run_ids: set[str]) -> None:
        """Lets go of the logs of these runs' attempts that ended (their last look was taken)."""
        query = select(attempts.c.log_key).where(
            attempts.c.run_id.in_(sorted(run_ids)), attempts.c.state.in_(LIVE_STATES)
        )
        live = set(await self._db.read(lambda conn: list(conn.scalars(query))))
        for watched in [w for w in self._watched.values() if w.run_id in run_ids]:
            if watched.log_key in live:
                continue
            del self._watched[watched.log_key]
            with contextlib.suppress(Exception):  # the stamps stay staged: still readable here
                await self._blobs.commit_staged(times_key(watched.log_key))

    async def _adopt(self, run_ids: set[str] | None) -> None:
        """The live attempts of this scheduler (of `run_ids` only, when given)."""
        query = select(attempts.c.run_id, attempts.c.log_key).where(
            attempts.c.state.in_(LIVE_STATES), attempts.c.scheduler_id == self._scheduler_id()
        )
        if run_ids is not None:
            query = query.where(attempts.c.run_id.in_(sorted(run_ids)))
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        for run_id, log_key in rows:
            if log_key not in self._watched:
                path = str(self._blobs.staging_path(log_key))
                self._watched[log_key] = _Watched(run_id, log_key, path)

    def _look(self, watched: Sequence[_Watched]) -> None:
        now_ms = int(time.time() * 1000)
        for each in watched:
            try:
                size = os.stat(each.path).st_size
            except FileNotFoundError:
                continue
            if size <= each.seen:
                continue
            each.seen = size
            stamps = self._blobs.staging_path(times_key(each.log_key))
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            with os.fdopen(os.open(stamps, flags, PRIVATE_FILE), "a", encoding="ascii") as sink:
                sink.write(f"{size} {now_ms}\n")
