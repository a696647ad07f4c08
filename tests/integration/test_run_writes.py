"""A write transaction PostgreSQL aborts to break a deadlock runs again, whole, and commits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

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
