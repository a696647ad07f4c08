"""Write transactions on runs: what they changed is published once they commit.

A transaction collects the runs it changed and the attempts it admitted. After the commit the
changes reach the in-process bus (API waits, SSE, the dashboard, the scheduler's cancel watch),
other processes through NOTIFY (sent inside the transaction, so they hear exactly what
committed), and admitted attempts go to this process's launcher — the scheduler that starts their
instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.events import EventBus, RunChanged
from core.notify import notify
from scheduler.runs.admission import Admitted
from scheduler.write_lock import WriteLock

logger = logging.getLogger(__name__)

Launch = Callable[[list[Admitted]], object]


@dataclass
class Changes:
    """What one transaction changed."""

    runs: list[RunChanged] = field(default_factory=list)
    admitted: list[Admitted] = field(default_factory=list)
    # pending work the scheduler's loop must look at (a backoff, a run no one admitted here)
    wake: bool = False

    def add(self, change: RunChanged) -> None:
        self.runs.append(change)


@dataclass(frozen=True)
class Admitter:
    """This process's scheduler: admits in the transactions that free slots, starts instances."""

    scheduler_id: str
    launch: Launch


class Writer:
    """Opens write transactions; one at a time where the database allows one writer."""

    def __init__(self, engine: AsyncEngine, bus: EventBus, lock: WriteLock, *, origin: str) -> None:
        self.engine = engine
        self.bus = bus
        self.origin = origin
        self.cross_process = engine.dialect.name == "postgresql"
        self.wake_scheduler = asyncio.Event()
        self.admitter: Admitter | None = None
        self._lock = lock

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[tuple[AsyncConnection, Changes]]:
        changes = Changes()
        async with self._lock, self.engine.begin() as conn:
            yield conn, changes
            if changes.runs and self.cross_process:
                await notify(conn, self.origin, changes.runs)
        self.publish(changes)

    def publish(self, changes: Changes) -> None:
        for change in changes.runs:
            self.bus.publish(change)
        if changes.admitted:
            if self.admitter is None:  # detached between admitting and committing
                changes.wake = True
            else:
                self.admitter.launch(changes.admitted)
        if changes.wake:
            self.wake_scheduler.set()
