"""In-process notifications: who waits on which run, and who watches every change."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class RunChanged:
    run_id: str
    root_id: str
    parent_id: str | None
    status: str
    terminal: bool


class EventBus:
    """Fan-out of run changes to per-run waiters and to subscribers (SSE, dashboard, scheduler)."""

    def __init__(self) -> None:
        self._run_waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._subscribers: set[asyncio.Queue[RunChanged]] = set()
        self._listeners: list[Callable[[RunChanged], None]] = []

    def publish(self, change: RunChanged) -> None:
        for event in self._run_waiters.get(change.run_id, ()):
            event.set()
        for queue in self._subscribers:
            queue.put_nowait(change)
        for listener in self._listeners:
            listener(change)

    def add_listener(self, listener: Callable[[RunChanged], None]) -> None:
        self._listeners.append(listener)

    @contextmanager
    def watch_run(self, run_id: str) -> Iterator[asyncio.Event]:
        """An event set at `run_id`'s next change; register it before reading the run's state."""
        event = asyncio.Event()
        self._run_waiters[run_id].add(event)
        try:
            yield event
        finally:
            waiters = self._run_waiters.get(run_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._run_waiters[run_id]

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[RunChanged]]:
        queue: asyncio.Queue[RunChanged] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
