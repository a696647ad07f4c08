"""Write transactions on runs: what they changed is published once they commit.

A transaction collects the runs it changed and the attempts it admitted. After the commit the
changes reach the in-process bus (API waits, SSE, the dashboard, the scheduler's cancel watch),
other processes through NOTIFY (sent inside the transaction, so they hear exactly what
committed), and admitted attempts go to this process's launcher — the scheduler that starts their
instances.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Executable
from sqlalchemy.exc import DBAPIError

from core.db.database import Database
from core.events import EventBus, RunChanged
from core.notify import notify
from scheduler.runs.admission import Admitted

T = TypeVar("T")

# how long a deferred update waits for a transaction to go out with before it goes on its own
DEFER_SECONDS = 0.02
# a transaction the database aborted to break a deadlock (or a serialization failure) is run
# again, up to this many times in all, after a short random pause
TRIES = 5
RETRY_DELAY_S = 0.005
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})

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
        deferred, self._deferred = self._deferred, []
        for attempt in range(1, TRIES + 1):
            changes = Changes()
            try:
                result = await self.db.write(
                    functools.partial(self._transaction, fn, deferred, changes)
                )
            except DBAPIError as exc:
                if attempt < TRIES and is_transient(exc):
                    # PostgreSQL chose this transaction as a deadlock's victim: it rolled back
                    # whole, so running it again is safe
                    logger.info("transaction retried (%d/%d): %s", attempt, TRIES, _first_line(exc))
                    await asyncio.sleep(random.uniform(0, RETRY_DELAY_S * attempt))
                    continue
                self._deferred[:0] = deferred  # rolled back with the rest: they go with the next
                raise
            except BaseException:
                self._deferred[:0] = deferred
                raise
            self.publish(changes)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _transaction(
        self,
        fn: Callable[[Connection, Changes], T],
        deferred: list[tuple[Executable, dict[str, Any]]],
        changes: Changes,
        conn: Connection,
    ) -> T:
        _write_deferred(conn, deferred)
        result = fn(conn, changes)
        if changes.runs and self.cross_process:
            notify(conn, self.origin, changes.runs)
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


def is_transient(exc: DBAPIError) -> bool:
    """A deadlock victim or a serialization failure: the transaction may simply run again."""
    for error in (exc.orig, getattr(exc.orig, "__cause__", None)):
        if getattr(error, "sqlstate", None) in _TRANSIENT_SQLSTATES:
            return True
    return False


def _first_line(exc: BaseException) -> str:
    return str(exc).split("\n", 1)[0]


def _write_deferred(conn: Connection, deferred: list[tuple[Executable, dict[str, Any]]]) -> None:
    """Each statement once, with every set of parameters deferred for it."""
    by_statement: dict[int, tuple[Executable, list[dict[str, Any]]]] = {}
    for statement, params in deferred:
        by_statement.setdefault(id(statement), (statement, []))[1].append(params)
    for statement, all_params in by_statement.values():
        conn.execute(statement, all_params)
