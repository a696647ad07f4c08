"""Attempt logs: read a chunk, or follow one as its instance writes it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator

from sqlalchemy import Connection, select

from core.blobs.base import BlobNotFound, BlobStore
from core.db.database import Database
from core.domain import LogChunk
from core.errors import NotFound
from core.events import EventBus
from scheduler.runs.log_times import parse_stamps, times_key
from scheduler.runs.rows import AnyRow, attempts, runs

CHUNK_BYTES = 256 * 1024
_STAMP_BYTES = 4 * 1024 * 1024  # ~200,000 stamps: hours of a log growing four times a second
# while a followed log has nothing new and no change of its run arrives, look again this often
_FOLLOW_SECONDS = 0.25


class RunLogs:
    def __init__(self, db: Database, blobs: BlobStore, bus: EventBus) -> None:
        self._db = db
        self._blobs = blobs
        self._bus = bus

    async def _attempt(self, workspace_id: str, run_id: str, number: int | None) -> AnyRow:
        return await self._db.read(functools.partial(_log_attempt, workspace_id, run_id, number))

    async def read_log(
        self, workspace_id: str, run_id: str, attempt: int | None, offset: int = 0
    ) -> LogChunk:
        """A chunk of an attempt's log (the latest attempt by default). NotFound if none."""
        row = await self._attempt(workspace_id, run_id, attempt)
        try:
            data = await self._blobs.read_range(row.log_key, offset, CHUNK_BYTES)
        except BlobNotFound:
            data = b""
        # metered once its instance is gone: its log is complete (and stored, on S3)
        return LogChunk(data, offset + len(data), row.number, row.compute_seconds is not None)

    async def read_stamps(
        self, workspace_id: str, run_id: str, attempt: int | None
    ) -> list[tuple[int, int]]:
        """When the attempt's log grew: (offset, ms since the epoch) pairs; [] if never seen."""
        row = await self._attempt(workspace_id, run_id, attempt)
        try:  # a range read also finds stamps still staged (not yet sent to S3)
            text = await self._blobs.read_range(times_key(row.log_key), 0, _STAMP_BYTES)
        except BlobNotFound:
            return []
        return parse_stamps(text.decode("ascii", errors="replace"))

    async def follow_log(
        self, workspace_id: str, run_id: str, attempt: int | None, offset: int = 0
    ) -> AsyncIterator[bytes]:
        """The attempt's log from `offset`, then new bytes as written, until the attempt ends."""
        number = (await self._attempt(workspace_id, run_id, attempt)).number
        while True:
            with self._bus.watch_run(run_id) as changed:
                chunk = await self.read_log(workspace_id, run_id, number, offset)
                if chunk.data:
                    offset = chunk.next_offset
                    yield chunk.data
                    continue
                if chunk.finished:
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_FOLLOW_SECONDS):
                        await changed.wait()


def _log_attempt(workspace_id: str, run_id: str, number: int | None, conn: Connection) -> AnyRow:
    query = (
        select(attempts.c.number, attempts.c.log_key, attempts.c.compute_seconds)
        .join(runs, runs.c.id == attempts.c.run_id)
        .where(runs.c.id == run_id, runs.c.workspace_id == workspace_id)
    )
    if number is None:
        query = query.order_by(attempts.c.number.desc()).limit(1)
    else:
        query = query.where(attempts.c.number == number)
    attempt = conn.execute(query).first()
    if attempt is not None:
        return attempt
    known = select(runs.c.id).where(runs.c.id == run_id, runs.c.workspace_id == workspace_id)
    if conn.scalar(known) is None:
        raise NotFound(f"task run {run_id} not found")
    which = "any attempt" if number is None else f"attempt {number}"
    raise NotFound(f"task run {run_id} has no log for {which} yet")
