"""Write transactions on runs: what they changed is published once they commit.

A transaction collects the runs it changed and the attempts it admitted. After the commit the
changes reach the in-process bus (API waits, SSE, the dashboard, the scheduler's cancel watch),
other processes through NOTIFY (sent inside the transaction, so they hear exactly what
committed), and admitted attempts go to this process's launcher — the scheduler that starts their
instances.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Executable

from core.db.database import Database
from core.events import EventBus, RunChanged
from core.notify import notify
from scheduler.runs.admission import Admitted

T = TypeVar("T")

# how long a deferred update waits for a transaction to go out with before it goes on its own
DEFER_SECONDS = 0.02

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
    """This process's scheduler: admits in the transactions that free slots, starts instances.

    With several schedulers alive (`schedulers()`), it takes that way only its fair share of a
    workspace's slots, so that none keeps every slot it frees: the others, woken by the change,
    take the rest.
    """

    scheduler_id: str
    launch: Launch
    schedulers: Callable[[], int] = lambda: 1


class Writer:
    """Runs write transactions on the database and publishes what they changed."""

    def __init__(self, db: Database, bus: EventBus, *, origin: str) -> None:
        self.db = db
        self.bus = bus
        self.origin = origin
        self.cross_process = db.dialect == "postgresql"
        self.wake_scheduler = asyncio.Event()
        self.admitter: Admitter | None = None
        self._deferred: list[tuple[Executable, dict[str, Any]]] = []
        self._flush: asyncio.Task[None] | None = None

    def defer(self, statement: Executable, params: dict[str, Any]) -> None:
        """An idempotent update nothing waits on: it goes out with the next transaction, or on
        its own within `DEFER_SECONDS` — many in one commit when many come at once."""
        self._deferred.append((statement, params))
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(DEFER_SECONDS)
        if self._deferred:
            await self.run(lambda conn, changes: None)

    async def flush(self) -> None:
        """Write what is deferred now (at shutdown)."""
        if self._deferred:
            await self.run(lambda conn, changes: None)

    async def run(self, fn: Callable[[Connection, Changes], T]) -> T:
        """`fn` as one transaction; its changes are published once it commits.

        Shielded: a caller that goes away does not stop a commit from being published.
        """
        return await asyncio.shield(self._run(fn))

    async def _run(self, fn: Callable[[Connection, Changes], T]) -> T:
        changes = Changes()
        deferred, self._deferred = self._deferred, []

        def transaction(conn: Connection) -> T:
            _write_deferred(conn, deferred)
            result = fn(conn, changes)
            if changes.runs and self.cross_process:
                notify(conn, self.origin, changes.runs)
            return result

        try:
            result = await self.db.write(transaction)
        except BaseException:
            self._deferred[:0] = deferred  # rolled back with the rest: they go with the next
            raise
        self.publish(changes)
        return result

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


def _write_deferred(conn: Connection, deferred: list[tuple[Executable, dict[str, Any]]]) -> None:
    """Each statement once, with every set of parameters deferred for it."""
    by_statement: dict[int, tuple[Executable, list[dict[str, Any]]]] = {}
    for statement, params in deferred:
        by_statement.setdefault(id(statement), (statement, []))[1].append(params)
    for statement, all_params in by_statement.values():
        conn.execute(statement, all_params)
