"""Server-sent events: items of a stream as they come, and a keep-alive while none does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

T = TypeVar("T")

PING = ": ping\n\n"


async def with_pings(
    source: AsyncIterator[T], ping_seconds: float
) -> AsyncGenerator[T | None, None]:
    """Yield each item of `source`, and None after every `ping_seconds` without one.

    The pending read is kept across pings (never cancelled mid-item), and `source` is closed
    when the consumer stops, so a dropped client releases its subscription at once.
    """
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(source))
            done, _ = await asyncio.wait({pending}, timeout=ping_seconds)
            if not done:
                yield None
                continue
            finished, pending = pending, None
            try:
                yield finished.result()
            except StopAsyncIteration:
                return
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
