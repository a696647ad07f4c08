"""Serialises writers where the database allows one at a time (SQLite), a no-op elsewhere."""

from __future__ import annotations

import asyncio
from types import TracebackType


class WriteLock:
    def __init__(self, *, serialise: bool) -> None:
        self._lock = asyncio.Lock() if serialise else None

    async def __aenter__(self) -> None:
        if self._lock is not None:
            await self._lock.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._lock is not None:
            self._lock.release()
