"""Numbered run changes, so a page drawn at change N asks for exactly those after N.

A page carries the cursor it was drawn at (`<epoch>.<n>`); its event stream replays the changes
after it from memory, then follows new ones; each event's `id:` is its cursor, so a browser that
reconnects (`Last-Event-ID`) misses nothing either. A cursor of another process (another epoch)
or one older than what is kept is answered with a `stale` event: the page then refreshes once.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import Request

from app.api.state import app_state
from core.events import EventBus, RunChanged

KEPT = 4096  # changes remembered for pages and reconnects; held at most for a slow reader

Numbered = tuple[int, RunChanged]
# what a follower reads: a change, or None where it fell so far behind that changes were dropped
Followed = tuple[int, RunChanged | None]


class ChangeLog:
    def __init__(self, bus: EventBus, kept: int = KEPT) -> None:
        self.epoch = secrets.token_hex(4)
        self._last = 0
        self._kept = kept
        self._recent: deque[Numbered] = deque(maxlen=kept)
        self._followers: set[asyncio.Queue[Followed]] = set()
        bus.add_listener(self._record)

    @property
    def cursor(self) -> str:
        """Where the log is now: what a page drawn now has seen."""
        return f"{self.epoch}.{self._last}"

    def _record(self, change: RunChanged) -> None:
        self._last += 1
        entry = (self._last, change)
        self._recent.append(entry)
        for queue in self._followers:
            if queue.qsize() >= self._kept:  # a reader this far behind refreshes instead
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait((self._last, None))
            else:
                queue.put_nowait(entry)

    def after(self, cursor: str | None) -> list[Numbered] | None:
        """The changes after `cursor`; None when they are not all known (another epoch, too old)."""
        epoch, _, number = (cursor or "").partition(".")
        if epoch != self.epoch or not number.isdigit():
            return None
        seen = int(number)
        if seen > self._last:
            return None
        oldest = self._recent[0][0] if self._recent else self._last + 1
        if seen + 1 < oldest:
            return None
        return [entry for entry in self._recent if entry[0] > seen]

    @asynccontextmanager
    async def follow(self) -> AsyncIterator[asyncio.Queue[Followed]]:
        """Every change from now on, in order (None where too many were left unread)."""
        queue: asyncio.Queue[Followed] = asyncio.Queue()
        self._followers.add(queue)
        try:
            yield queue
        finally:
            self._followers.discard(queue)


def change_log(request: Request) -> ChangeLog:
    """The application's log, started on first use (pages drawn before it need none)."""
    log: ChangeLog | None = getattr(request.app.state, "dashboard_changes", None)
    if log is None:
        log = ChangeLog(app_state(request).runtime.store.bus)
        request.app.state.dashboard_changes = log
    return log
