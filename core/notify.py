"""Run changes across processes: PostgreSQL NOTIFY inside the writing transaction, LISTEN here.

Each process publishes its own changes to its in-process bus directly; what other processes
commit arrives through `LISTEN` and is published to the bus too (own messages are skipped by
origin), so API waits, SSE streams and scheduler wake-ups work when the API and the schedulers
are separate processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import Connection, text

from core.events import EventBus, RunChanged

logger = logging.getLogger(__name__)

CHANNEL = "conveyor_runs"
# NOTIFY payloads are limited to 8000 bytes; a change is ~150 bytes
_CHANGES_PER_NOTIFY = 40
_RECONNECT_SECONDS = 1.0


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def notify(conn: Connection, origin: str, changes: Sequence[RunChanged]) -> None:
    """Queue the changes for delivery when the session's transaction commits."""
    for start in range(0, len(changes), _CHANGES_PER_NOTIFY):
        batch = changes[start : start + _CHANGES_PER_NOTIFY]
        payload = json.dumps(
            {
                "o": origin,
                "c": [[c.run_id, c.root_id, c.parent_id, c.status, c.terminal] for c in batch],
            }
        )
        conn.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
        )


def _setter(event: asyncio.Event) -> Any:
    return lambda _connection: event.set()


class PgListener:
    """Feeds other processes' committed run changes into the local bus; reconnects when cut."""

    def __init__(self, dsn: str, origin: str, bus: EventBus, wake: asyncio.Event) -> None:
        self._dsn = dsn
        self._origin = origin
        self._bus = bus
        self._wake = wake
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        async with asyncio.timeout(10):
            await self._connected.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            connection: Any = None
            try:
                connection = await asyncpg.connect(self._dsn)
                lost = asyncio.Event()
                connection.add_termination_listener(_setter(lost))
                await connection.add_listener(CHANNEL, self._on_notification)
                self._connected.set()
                # a change may have been missed while disconnected: let waiters re-read
                self._wake.set()
                await lost.wait()
            except (OSError, asyncpg.PostgresError) as exc:
                logger.warning("LISTEN %s: %s; reconnecting", CHANNEL, exc)
            finally:
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await connection.close()
            await asyncio.sleep(_RECONNECT_SECONDS)

    def _on_notification(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
        except json.JSONDecodeError:
            logger.warning("ignoring a malformed %s notification", CHANNEL)
            return
        if message.get("o") == self._origin:
            return
        for run_id, root_id, parent_id, status, terminal in message.get("c", []):
            self._bus.publish(RunChanged(run_id, root_id, parent_id, status, bool(terminal)))
        self._wake.set()
