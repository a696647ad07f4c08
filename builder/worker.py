"""`conveyor builder`'s loop: claim queued builds, run them, heartbeat, take over the vanished.

Stopping (SIGTERM) claims nothing more; builds in progress get `stop_grace_seconds` to finish,
then are stopped and handed back to the queue for another builder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from builder.execution import BuildExecution
from builder.queue import BuildQueue, Claim, Settled
from core.build_settings import BuilderSettings

logger = logging.getLogger(__name__)


class BuildWorker:
    def __init__(
        self,
        queue: BuildQueue,
        execution: BuildExecution,
        settings: BuilderSettings,
        *,
        slots: int,
    ) -> None:
        self.queue = queue
        self._execution = execution
        self._settings = settings
        self._slots = slots
        self._running: dict[str, asyncio.Task[None]] = {}
        self._changed = asyncio.Event()
        self._next_take_over = 0.0
        self.ran: list[str] = []  # build ids this worker started, in order

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then finish or hand back what is in progress."""
        await self.queue.register()
        logger.info("builder %s (%s) taking builds", self.queue.name, self.queue.id)
        beating = asyncio.create_task(self._heartbeats())
        try:
            while not stop.is_set():
                try:
                    await self._step()
                except Exception:
                    # the database may be restarting: keep the builds in progress, try again
                    logger.exception("builder %s: looking for builds failed", self.queue.name)
                await self._wait(stop)
            await self._drain()
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            with contextlib.suppress(Exception):
                await self.queue.stop()

    async def _step(self) -> None:
        if time.monotonic() >= self._next_take_over:
            self._next_take_over = time.monotonic() + self._settings.heartbeat_seconds
            for settled in await self.queue.take_over():
                await self._report_settled(settled)
            for build_id in await self.queue.take_held():
                check_run_id = await self._execution.announce(build_id)
                await self.queue.release(build_id, check_run_id)
        while len(self._running) < self._slots:
            claim = await self.queue.claim()
            if claim is None:
                return
            self._start(claim)

    def _start(self, claim: Claim) -> None:
        logger.info(
            "builder %s: build %s (attempt %d)", self.queue.name, claim.build_id, claim.attempt
        )
        self.ran.append(claim.build_id)
        task = asyncio.create_task(
            self._execution.run(claim.build_id, note=claim.note, attempt=claim.attempt)
        )
        self._running[claim.build_id] = task

        def ended(_: asyncio.Task[None]) -> None:
            self._running.pop(claim.build_id, None)
            self._changed.set()

        task.add_done_callback(ended)

    async def _wait(self, stop: asyncio.Event) -> None:
        self._changed.clear()
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._changed.wait())]
        try:
            await asyncio.wait(
                waits, timeout=self._settings.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for wait in waits:
                wait.cancel()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._settings.heartbeat_seconds)
            try:
                await self.queue.heartbeat()
            except Exception:
                logger.exception("builder %s: heartbeat failed", self.queue.name)

    async def _drain(self) -> None:
        """Let builds in progress finish within the grace time; hand the rest back."""
        if not self._running:
            return
        grace = self._settings.stop_grace_seconds
        logger.warning(
            "builder %s stopping: %d builds in progress get %g s to finish",
            self.queue.name,
            len(self._running),
            grace,
        )
        running = dict(self._running)
        late = set(running.values())
        if grace > 0:
            _, late = await asyncio.wait(late, timeout=grace)
        for build_id, task in running.items():
            if task not in late:
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            try:
                await self.queue.hand_back(build_id)
            except Exception:
                logger.exception("build %s could not be handed back", build_id)

    async def _report_settled(self, settled: Settled) -> None:
        await self._execution.report_settled(settled.build_id, settled.succeeded, settled.message)
