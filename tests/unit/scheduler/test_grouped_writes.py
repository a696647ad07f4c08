"""Transitions that queue behind a transaction are written together, each as it would be alone.

On a real SQLite database through the engine's own threaded driver; the first transaction is
held open (an event its function waits on) so that the others queue behind it deterministically.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, text

from core.db.database import ThreadedSQLite
from core.db.write_lock import WriteLock
from core.events import EventBus, RunChanged
from scheduler.runs.writes import Changes, Writer

pytestmark = pytest.mark.anyio

T = TypeVar("T")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _Counted:
    """The database, counting its write transactions (each one BEGIN … COMMIT)."""

    def __init__(self, db: ThreadedSQLite) -> None:
        self.dialect = db.dialect
        self.db = db
        self.transactions = 0

    async def write(self, fn: Callable[[Connection], T]) -> T:
        self.transactions += 1
        return await self.db.write(fn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        return await self.db.read(fn)

    async def close(self) -> None:
        await self.db.close()


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[_Counted]:
    db = ThreadedSQLite(str(tmp_path / "writes.db"), WriteLock(serialise=True))
    await db.write(lambda conn: conn.exec_driver_sql("CREATE TABLE items (name TEXT UNIQUE)"))
    yield _Counted(db)
    await db.close()


def _insert(name: str) -> Callable[[Connection, Changes], list[str]]:
    """Adds `name`, tells of it, and returns every name there is then (what it saw)."""

    def insert(conn: Connection, changes: Changes) -> list[str]:
        conn.execute(text("INSERT INTO items VALUES (:name)"), {"name": name})
        changes.add(RunChanged(name, name, None, "pending", False))
        return [row[0] for row in conn.execute(text("SELECT name FROM items ORDER BY rowid"))]

    return insert


async def _names(db: _Counted) -> list[str]:
    rows = await db.read(lambda conn: conn.execute(text("SELECT name FROM items ORDER BY rowid")))
    return [row[0] for row in rows]


class _Held:
    """A first transaction that stays open until released, so that others queue behind it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, conn: Connection, changes: Changes) -> str:
        conn.execute(text("INSERT INTO items VALUES ('first')"))
        self.entered.set()
        self.release.wait(10)
        return "first"


def _telling_writer(database: _Counted) -> tuple[Writer, list[str]]:
    """A writer, and the runs its commits told of, in order."""
    bus = EventBus()
    told: list[str] = []
    bus.add_listener(lambda change: told.append(change.run_id))
    return Writer(database, bus, origin="test"), told


async def _queue_behind(writer: Writer, held: _Held, fns: list[Any]) -> list[asyncio.Task[Any]]:
    first = asyncio.ensure_future(writer.run(held))
    await asyncio.to_thread(held.entered.wait, 10)
    tasks = [asyncio.ensure_future(writer.run(fn)) for fn in fns]
    await asyncio.sleep(0)  # each has queued
    held.release.set()
    return [first, *tasks]


async def test_transitions_queued_behind_a_transaction_go_together_in_order(
    database: _Counted,
) -> None:
    writer, told = _telling_writer(database)

    tasks = await _queue_behind(writer, _Held(), [_insert("a"), _insert("b"), _insert("c")])
    results = await asyncio.gather(*tasks)

    assert database.transactions == 2  # the held one, then a, b and c as one
    assert results == [
        "first",
        ["first", "a"],
        ["first", "a", "b"],
        ["first", "a", "b", "c"],
    ]
    assert told == ["a", "b", "c"]
    assert await _names(database) == ["first", "a", "b", "c"]


async def test_a_failing_transition_fails_alone_and_the_others_commit_once(
    database: _Counted,
) -> None:
    writer, told = _telling_writer(database)
    runs = {"b": 0}

    def fails_after_writing(conn: Connection, changes: Changes) -> None:
        runs["b"] += 1
        _insert("b")(conn, changes)
        raise LookupError("b is refused")

    tasks = await _queue_behind(writer, _Held(), [_insert("a"), fails_after_writing, _insert("c")])
    first, a, b, c = await asyncio.gather(*tasks, return_exceptions=True)

    assert (first, a, c) == ("first", ["first", "a"], ["first", "a", "c"])
    assert isinstance(b, LookupError) and str(b) == "b is refused"
    assert runs["b"] == 2  # in the group, then alone
    # the group rolled back whole: a is written once, b not at all, and only what committed
    # was told
    assert await _names(database) == ["first", "a", "c"]
    assert told == ["a", "c"]
    # the held one, the group (rolled back), then a, b and c one by one
    assert database.transactions == 5


async def test_a_group_holds_at_most_32_transitions(database: _Counted) -> None:
    writer = Writer(database, EventBus(), origin="test")
    names = [f"n{n:02}" for n in range(40)]

    tasks = await _queue_behind(writer, _Held(), [_insert(name) for name in names])
    await asyncio.gather(*tasks)

    assert database.transactions == 3  # the held one, 32, then 8
    assert await _names(database) == ["first", *names]


async def test_a_caller_that_goes_away_does_not_stop_its_transition(database: _Counted) -> None:
    writer = Writer(database, EventBus(), origin="test")
    held = _Held()
    first = asyncio.ensure_future(writer.run(held))
    await asyncio.to_thread(held.entered.wait, 10)
    gone = asyncio.ensure_future(writer.run(_insert("gone")))
    await asyncio.sleep(0)
    gone.cancel()
    held.release.set()
    assert await first == "first"

    await writer.flush()

    assert gone.cancelled()
    assert await _names(database) == ["first", "gone"]


async def test_a_lone_transition_that_raises_writes_nothing(database: _Counted) -> None:
    writer = Writer(database, EventBus(), origin="test")

    def refused(conn: Connection, changes: Changes) -> None:
        _insert("x")(conn, changes)
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await writer.run(refused)

    assert database.transactions == 1
    assert await _names(database) == []
    assert await writer.run(_insert("y")) == ["y"]
