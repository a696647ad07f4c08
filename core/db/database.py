"""Run a function of a connection as one transaction, with no hop between threads per statement.

The engine's hot path (run and attempt state) is written as plain functions of a synchronous
SQLAlchemy `Connection`, then run whole:

- SQLite: on a thread of its own with the standard library's driver — one hand-over between
  threads per transaction, where an asyncio driver pays one per statement, cursor and fetch.
  Writes run on a single thread in `BEGIN IMMEDIATE` transactions, after the process's write
  lock (which the ORM's writers take too): one writer at a time, never a busy upgrade.
  Reads run on a few other threads; WAL lets them read while the writer writes. Each thread
  keeps its connection from one transaction to the next.
- PostgreSQL: in the event loop through asyncpg (`AsyncConnection.run_sync` runs the function
  in a greenlet: no thread at all). Reads run in autocommit: each statement is one round trip,
  with no BEGIN before nor ROLLBACK after (under READ COMMITTED each statement took a snapshot
  of its own anyway). No more than a set number run at once, the rest wait their turn: past
  the pool's size each would open an overflow connection, a PostgreSQL backend started and
  ended for one statement (a fan-out of 1,000 children opened 826 of them).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from core.db.engine import sqlite_pragmas
from core.db.write_lock import WriteLock

T = TypeVar("T")

_READ_THREADS = 2


class Database(Protocol):
    dialect: str

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """`fn` in a write transaction; committed if it returns, rolled back if it raises."""
        ...

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """`fn` on a connection that only reads."""
        ...

    async def close(self) -> None: ...


def open_database(engine: AsyncEngine, lock: WriteLock) -> Database:
    """The database behind `engine`, reached the fastest way its dialect allows."""
    if engine.dialect.name == "sqlite":
        return ThreadedSQLite(engine.url.database or ":memory:", lock)
    return AsyncDatabase(engine)


class AsyncDatabase:
    """Any asyncio driver's database (asyncpg): functions run in a greenlet on the loop."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.dialect = engine.dialect.name
        self._engine = engine
        # the same pool; asyncpg's adapter sets the level on checkout without a round trip
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        size = engine.pool.size() if isinstance(engine.pool, QueuePool) else 1
        self._turns = asyncio.Semaphore(functions_at_once(size))

    async def write(self, fn: Callable[[Connection], T]) -> T:
        async with self._turns, self._engine.begin() as conn:
            return await conn.run_sync(fn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        async with self._turns, self._reader.connect() as conn:
            return await conn.run_sync(fn)

    async def close(self) -> None:
        """The engine is its owner's to dispose of."""


def functions_at_once(pool_size: int) -> int:
    """How many functions an `AsyncDatabase` runs at once: four in five of the pool's kept
    connections, so that the ORM's sessions and a listener still find one there."""
    return max(1, pool_size * 4 // 5)


def _sqlite_engine(path: str, *, pool_size: int) -> Engine:
    engine = create_sync_engine(
        f"sqlite+pysqlite:///{path}",
        # a pooled connection is used by one thread at a time, not always the same one
        connect_args={"check_same_thread": False},
        poolclass=QueuePool,
        pool_size=pool_size,
        max_overflow=0,
    )

    @event.listens_for(engine, "connect")
    def connect(dbapi_connection: Any, record: Any) -> None:
        sqlite_pragmas(dbapi_connection, record)
        # the driver begins nothing: `_ThreadConnections` does (a connection event for it would
        # cost every statement a dispatch)
        dbapi_connection.isolation_level = None

    return engine


class ThreadedSQLite:
    """SQLite on threads of its own: one writer, a few readers."""

    dialect = "sqlite"

    def __init__(self, path: str, lock: WriteLock) -> None:
        self._lock = lock
        self._writer = _ThreadConnections(_sqlite_engine(path, pool_size=1), "BEGIN IMMEDIATE")
        self._reader = _ThreadConnections(_sqlite_engine(path, pool_size=_READ_THREADS), "BEGIN")
        self._write_thread = _Threads("sqlite-write", 1)
        self._read_threads = _Threads("sqlite-read", _READ_THREADS)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        async with self._lock:
            return await self._write_thread.run(self._writer.transaction, fn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        return await self._read_threads.run(self._reader.transaction, fn)

    async def close(self) -> None:
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._write_thread.stop()
        self._read_threads.stop()
        self._writer.close()
        self._reader.close()


class _ThreadConnections:
    """Each thread's own connection to one engine, kept open from one transaction to the next.

    A pooled connection per transaction cost a checkout, a `Connection` and a check-in each
    time: about as much as a small transaction's statements on SQLite.
    """

    def __init__(self, engine: Engine, begin: str) -> None:
        self._engine = engine
        self._begin = begin
        self._local = threading.local()
        self._opened: list[Connection] = []

    def transaction(self, fn: Callable[[Connection], T]) -> T:
        """`fn` in one transaction: committed if it returns, rolled back if it raises."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._engine.connect()
            self._opened.append(conn)
        try:
            conn.exec_driver_sql(self._begin)
            result = fn(conn)
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except Exception:  # the connection is broken: the next transaction opens another
                self._local.conn = None
                self._opened.remove(conn)
                conn.invalidate()
            raise
        return result

    def close(self) -> None:
        """Once the threads have stopped."""
        for conn in self._opened:
            conn.close()
        self._opened.clear()
        self._engine.dispose()


class _Threads:
    """Threads that run what the loop hands them and hand each result straight back.

    Lighter than an executor: no `concurrent.futures.Future` (a lock and a condition each) and
    no chaining into an asyncio future; one queue put and one `call_soon_threadsafe` per call.
    """

    def __init__(self, name: str, count: int) -> None:
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
            for n in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, future, fn, args))
        return future

    def _work(self) -> None:
        while (call := self._queue.get()) is not None:
            loop, future, fn, args = call
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the awaiting task, whatever it is
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()


_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
