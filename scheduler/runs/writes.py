"""Write transactions on runs: what they changed is published once they commit.

Transitions that arrive while a transaction is being written wait for it and then go together,
in the order they came, as one transaction (group commit): a burst of creates, starts and
outcomes across runs costs one BEGIN, one COMMIT, one hand-over to the database's thread (or one
pooled connection) and one NOTIFY, not one each. Each runs as it would alone, seeing the writes
of those before it. If any of them raises, or the transaction fails, nothing of the group stays
and each runs again in a transaction of its own: a failure is its transition's alone, exactly as
if it had never been grouped. So a transition must be safe to run again, as it already had to be
for a deadlock's retry: it changes nothing outside the connection and its `Changes`. On
PostgreSQL, where transitions run concurrently and their lock order is what keeps them from
deadlocking, only transitions that take the same contended locks are grouped: root creates of
one workspace, children creates of one parent (see `Writer.run`).

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
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Executable
from sqlalchemy.exc import DBAPIError

from core.db.database import Database
from core.events import EventBus, RunChanged
from core.notify import notify
from scheduler.runs.admission import Admitted

T = TypeVar("T")

# the most transitions written in one transaction: a group holds SQLite's write lock, and
# PostgreSQL's row locks, for as long as it takes
GROUP_MAX = 32
# how long a deferred update waits for a transaction to go out with before it goes on its own
DEFER_SECONDS = 0.02
# a transaction the database aborted to break a deadlock (or a serialization failure) is run
# again, up to this many times in all, after a short random pause
TRIES = 5
RETRY_DELAY_S = 0.005
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})

logger = logging.getLogger(__name__)

Launch = Callable[[list[Admitted]], object]
Transition = Callable[[Connection, "Changes"], T]


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
        # transitions waiting to be written, by group key; each key has one writer at a time
        self._queued: dict[str, list[_Queued]] = {}
        self._writing: set[asyncio.Task[None]] = set()  # the group writers, transitions alone
        self._group_writers: dict[str, asyncio.Task[None]] = {}
        # SQLite has one writer: nothing there can deadlock, so everything may go in a group
        self._group_all = db.dialect == "sqlite"

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
        """Write what is deferred and queued now (at shutdown)."""
        if self._deferred:
            await self.run(lambda conn, changes: None)
        while self._writing:
            await asyncio.wait(self._writing)

    async def run(self, fn: Transition[T], *, group: str | None = None) -> T:
        """`fn` as a transaction; its changes are published once it commits.

        On SQLite it goes in a group with those that came meanwhile. On PostgreSQL only with
        those of the same `group` key, whose contended locks are the same rows taken in the
        same order: root creates of one workspace (its row), children creates of one parent
        (the parent's row, then its workspace's). Any other transition locks rows in the one
        order that keeps concurrent transitions from deadlocking (a run, its attempts, its
        children, then its workspace), which a group of different ones would break: it would
        hold one run's workspace while it locks the next run. One key, one set of rows: a
        group of root creates across two workspaces could lock them in either order.

        Shielded: a caller that goes away does not stop a commit from being published.
        """
        queued = _Queued(fn, asyncio.get_running_loop().create_future())
        key = "" if self._group_all else group
        if key is None:
            self._start(self._write_alone(queued))
        else:
            self._queued.setdefault(key, []).append(queued)
            writer = self._group_writers.get(key)
            if writer is None or writer.done():
                # (one that found its queue empty is done at once: it takes nothing more)
                self._group_writers[key] = self._start(self._write_queued(key))
        result: T = await asyncio.shield(queued.result)
        return result

    def _start(self, writing: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(writing)
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)
        return task

    async def _write_queued(self, key: str) -> None:
        try:
            while waiting := self._queued.get(key):
                group, self._queued[key] = waiting[:GROUP_MAX], waiting[GROUP_MAX:]
                try:
                    if len(group) == 1 or not await self._write_group(group):
                        for queued in group:
                            await self._write_alone(queued)
                except BaseException:  # cancelled at shutdown: no caller waits forever
                    for queued in (*group, *self._queued.pop(key, [])):
                        queued.result.cancel()
                    raise
        finally:
            if not self._queued.get(key):
                self._queued.pop(key, None)
                if self._group_writers.get(key) is asyncio.current_task():
                    del self._group_writers[key]

    async def _write_group(self, group: list[_Queued]) -> bool:
        """The group as one transaction; False (with nothing written) if any of it failed."""
        deferred, self._deferred = self._deferred, []
        try:
            done = await self.db.write(
                functools.partial(self._transaction, [q.fn for q in group], deferred)
            )
        except Exception as exc:
            self._deferred[:0] = deferred
            logger.debug("a group of %d transitions runs again one by one: %r", len(group), exc)
            return False
        except BaseException:
            self._deferred[:0] = deferred
            raise
        for queued, (result, changes) in zip(group, done, strict=True):
            self.publish(changes)
            _settle(queued.result, result, None)
        return True

    async def _write_alone(self, queued: _Queued) -> None:
        deferred, self._deferred = self._deferred, []
        for attempt in range(1, TRIES + 1):
            try:
                ((result, changes),) = await self.db.write(
                    functools.partial(self._transaction, [queued.fn], deferred)
                )
            except Exception as exc:
                if isinstance(exc, DBAPIError) and attempt < TRIES and is_transient(exc):
                    # PostgreSQL chose this transaction as a deadlock's victim: it rolled back
                    # whole, so running it again is safe
                    logger.info("transaction retried (%d/%d): %s", attempt, TRIES, _first_line(exc))
                    await asyncio.sleep(random.uniform(0, RETRY_DELAY_S * attempt))
                    continue
                self._deferred[:0] = deferred  # rolled back with the rest: they go with the next
                _settle(queued.result, None, exc)
                return
            except BaseException:
                self._deferred[:0] = deferred
                raise
            self.publish(changes)
            _settle(queued.result, result, None)
            return

    def _transaction(
        self,
        fns: list[Transition[Any]],
        deferred: list[tuple[Executable, dict[str, Any]]],
        conn: Connection,
    ) -> list[tuple[Any, Changes]]:
        _write_deferred(conn, deferred)
        done = []
        for fn in fns:
            changes = Changes()
            done.append((fn(conn, changes), changes))
        if self.cross_process and (changed := [c for _, ch in done for c in ch.runs]):
            notify(conn, self.origin, changed)
        return done

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


@dataclass(eq=False)
class _Queued:
    fn: Transition[Any]
    result: asyncio.Future[Any]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled with the loop
        return
    if error is None:
        future.set_result(result)
        return
    future.set_exception(error)
    # its caller may have gone (the result is shielded): the error is not lost, it was theirs
    future.add_done_callback(_retrieved)


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


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
