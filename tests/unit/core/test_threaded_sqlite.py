"""SQLite on threads of its own: each thread keeps its connection between transactions, and a
transaction that fails leaves nothing behind, on that connection or in the database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from core.db.database import ThreadedSQLite
from core.db.write_lock import WriteLock

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[ThreadedSQLite]:
    database = ThreadedSQLite(str(tmp_path / "t.db"), WriteLock(serialise=True))
    await database.write(lambda conn: conn.exec_driver_sql("CREATE TABLE t (v INTEGER)"))
    yield database
    await database.close()


async def _values(db: ThreadedSQLite) -> list[int]:
    rows = await db.read(lambda conn: conn.exec_driver_sql("SELECT v FROM t ORDER BY v").all())
    return [row[0] for row in rows]


def _insert(value: int) -> Callable[[Connection], object]:
    def insert(conn: Connection) -> object:
        conn.execute(text("INSERT INTO t VALUES (:v)"), {"v": value})
        return conn.connection.dbapi_connection  # held: a new one cannot take its address

    return insert


async def test_the_writer_keeps_one_connection_and_commits_each_transaction(
    db: ThreadedSQLite,
) -> None:
    first = await db.write(_insert(1))
    second = await db.write(_insert(2))
    assert first is second
    assert await _values(db) == [1, 2]


async def test_a_transaction_that_raises_is_rolled_back_and_the_next_one_commits(
    db: ThreadedSQLite,
) -> None:
    def refused(conn: Connection) -> None:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        raise LookupError("refused")

    with pytest.raises(LookupError):
        await db.write(refused)
    assert await db.read(lambda conn: conn.in_transaction()) is True  # a read's own BEGIN
    await db.write(_insert(2))
    assert await _values(db) == [2]


async def test_a_broken_connection_is_replaced(db: ThreadedSQLite) -> None:
    before = await db.write(_insert(1))

    def breaks(conn: Connection) -> None:
        conn.execute(text("INSERT INTO t VALUES (2)"))
        conn.connection.dbapi_connection.close()  # type: ignore[union-attr]
        raise ConnectionError("gone")

    with pytest.raises(ConnectionError):
        await db.write(breaks)
    after = await db.write(_insert(3))

    assert after is not before
    assert await _values(db) == [1, 3]


async def test_a_read_sees_what_committed_and_not_what_rolled_back(db: ThreadedSQLite) -> None:
    await db.write(_insert(1))
    assert await _values(db) == [1]

    def undone(conn: Connection) -> None:
        conn.execute(text("INSERT INTO t VALUES (9)"))
        raise ValueError

    with pytest.raises(ValueError):
        await db.write(undone)
    assert await _values(db) == [1]
