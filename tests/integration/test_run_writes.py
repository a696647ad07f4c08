"""A write transaction PostgreSQL aborts to break a deadlock runs again, whole, and commits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from core.db.database import AsyncDatabase
from core.events import EventBus
from scheduler.runs.writes import Changes, Writer
from tests.integration.databases import fresh_database
from tests.integration.engine_fixtures import WS, open_engine

pytestmark = pytest.mark.anyio

T = TypeVar("T")


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgres", tmp_path) as url:
        yield url


async def test_a_deadlock_victim_runs_again(postgres_url: str) -> None:
    url = postgres_url
    engine = create_async_engine(url)
    other = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE rows (id int PRIMARY KEY, v text)"))
            await conn.execute(text("INSERT INTO rows VALUES (1, ''), (2, '')"))
        writer = Writer(AsyncDatabase(engine), EventBus(), origin="test")
        tries = 0

        def one_then_two(conn: Connection, changes: Changes) -> int:
            nonlocal tries
            tries += 1
            conn.execute(text("UPDATE rows SET v = v || 'w' WHERE id = 1"))
            conn.execute(text("UPDATE rows SET v = v || 'w' WHERE id = 2"))
            return tries

        # the other side holds row 2, the writer takes row 1 and waits for row 2 …
        other_side = other.transaction()
        await other_side.start()
        await other.execute("UPDATE rows SET v = v || 'o' WHERE id = 2")
        writing = asyncio.ensure_future(writer.run(one_then_two))
        async with asyncio.timeout(30):
            while not await other.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
                await asyncio.sleep(0.01)
        # … and the other side asks for row 1: a deadlock, whose victim is the writer, which
        # waited first (PostgreSQL checks a waiter after deadlock_timeout)
        await other.execute("UPDATE rows SET v = v || 'o' WHERE id = 1")
        await other_side.commit()
        assert await asyncio.wait_for(writing, 30) == 2
        rows = dict(await other.fetch("SELECT id, v FROM rows ORDER BY id"))
        assert rows == {1: "ow", 2: "ow"}, "the other side's change, then the writer's, once"
    finally:
        await other.close()
        await engine.dispose()


async def test_admission_does_not_wait_on_rows_that_merely_name_the_workspace(
    postgres_url: str, tmp_path: Path
) -> None:
    """A transaction inserting a run holds FOR KEY SHARE on its workspace (the foreign key);
    admission's workspace lock must not wait for it, or concurrent creates deadlock."""
    async with open_engine(tmp_path, database_url=postgres_url) as runtime:
        other = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
        try:
            inserting = other.transaction()
            await inserting.start()
            await other.execute("SELECT 1 FROM workspaces WHERE id = $1 FOR KEY SHARE", WS)
            await asyncio.wait_for(runtime.transitions.set_limit(WS, 3), 10)
            await asyncio.wait_for(runtime.service.create_run(WS, "wf/leaf", [1]), 10)
            await inserting.rollback()
        finally:
            await other.close()


async def test_a_read_is_one_round_trip_per_statement(postgres_url: str) -> None:
    """Reads run in autocommit: no BEGIN before the statements (nor ROLLBACK after), so each
    statement is a transaction of its own, with its own `now()`; writes are one transaction."""
    engine = create_async_engine(postgres_url)
    database = AsyncDatabase(engine)

    def two_clocks(conn: Connection) -> tuple[object, object]:
        first = conn.scalar(text("SELECT now()"))
        conn.execute(text("SELECT pg_sleep(0.01)"))
        return first, conn.scalar(text("SELECT now()"))

    try:
        first, second = await database.read(two_clocks)
        assert first != second
        first, second = await database.write(two_clocks)
        assert first == second
    finally:
        await engine.dispose()


async def test_functions_beyond_the_pools_kept_connections_wait_for_one(postgres_url: str) -> None:
    """Past the pool's size each would open an overflow connection (a backend started and ended
    for one statement): they wait their turn on the kept ones instead."""
    engine = create_async_engine(postgres_url, pool_size=5, max_overflow=20)
    database = AsyncDatabase(engine)

    def backend(conn: Connection) -> int:
        conn.execute(text("SELECT pg_sleep(0.02)"))
        return int(conn.scalar(text("SELECT pg_backend_pid()")))

    try:
        pids = await asyncio.wait_for(
            asyncio.gather(*(database.read(backend) for _ in range(30))), 60
        )
        assert len(set(pids)) == 4  # four in five of the five kept
        pids = await asyncio.wait_for(
            asyncio.gather(*(database.write(backend) for _ in range(30))), 60
        )
        assert len(set(pids)) <= 4
    finally:
        await engine.dispose()


class _CountedWrites(AsyncDatabase):
    """PostgreSQL, counting the write transactions begun."""

    def __init__(self, url: str) -> None:
        super().__init__(create_async_engine(url))
        self.begun = 0

    async def write(self, fn: Callable[[Connection], T]) -> T:
        self.begun += 1
        return await super().write(fn)


async def _until(condition: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(30):
        while not await condition():
            await asyncio.sleep(0.01)


async def test_on_postgres_only_transitions_of_one_group_key_share_a_transaction(
    postgres_url: str,
) -> None:
    """Transitions of one key wait for their key's transaction and then go together; those of
    another key, and those of none, are written meanwhile, each key's in its own transaction:
    grouped with others, they would take row locks out of the order that keeps them from
    deadlocking."""
    db = _CountedWrites(postgres_url)
    holder = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
    try:
        async with db._engine.begin() as conn:
            await conn.execute(text("CREATE TABLE items (name text)"))
        writer = Writer(db, EventBus(), origin="test")

        def insert(name: str, *, wait: bool = False) -> Callable[[Connection, Changes], None]:
            def transition(conn: Connection, changes: Changes) -> None:
                if wait:  # until the test lets go of the advisory lock
                    conn.execute(text("SELECT pg_advisory_xact_lock(7)"))
                conn.execute(text("INSERT INTO items VALUES (:n)"), {"n": name})

            return transition

        async def waiting_on_the_lock() -> bool:
            query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            return bool(await holder.fetchval(query))

        await holder.execute("SELECT pg_advisory_lock(7)")
        first = asyncio.ensure_future(writer.run(insert("held", wait=True), group="a"))
        await _until(waiting_on_the_lock)
        creates = [asyncio.ensure_future(writer.run(insert(f"a-{n}"), group="a")) for n in range(3)]
        other_key = [
            asyncio.ensure_future(writer.run(insert(f"b-{n}"), group="b")) for n in range(3)
        ]
        others = [asyncio.ensure_future(writer.run(insert(f"other-{n}"))) for n in range(3)]
        await asyncio.wait_for(asyncio.gather(*others, *other_key), 30)  # not held up by "a"
        assert db.begun == 5  # the held one, the three of "b" together, each other one alone
        assert not creates[0].done()
        await holder.execute("SELECT pg_advisory_unlock(7)")
        await asyncio.wait_for(asyncio.gather(first, *creates), 30)

        assert db.begun == 6  # the three of "a" queued behind the held one: one transaction
        names = await holder.fetch("SELECT name FROM items")
        assert sorted(row["name"] for row in names) == [
            "a-0",
            "a-1",
            "a-2",
            "b-0",
            "b-1",
            "b-2",
            "held",
            "other-0",
            "other-1",
            "other-2",
        ]
        assert writer._queued == {} and writer._group_writers == {}  # no key is kept once done
    finally:
        await holder.close()
        await db._engine.dispose()
