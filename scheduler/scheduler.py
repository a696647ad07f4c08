"""The scheduler loop: admit under the limit, start instances, watch them, time out, kill."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from core.blobs.base import BlobStore
from core.data_dir import create_private_file
from core.domain import AttemptOutcome, RunStatus
from core.events import RunChanged
from core.settings import Settings
from scheduler.agent import Agent
from scheduler.executors.base import (
    AttemptSpec,
    Executor,
    Handle,
    InstanceState,
    InstanceStatus,
    Mode,
    can_reattach,
    discard_leftovers,
)
from scheduler.membership import Membership
from scheduler.reattach import readmit
from scheduler.runs.admission import Admitted
from scheduler.runs.reads import RunReads
from scheduler.runs.transitions import Transitions
from scheduler.runs.writes import Admitter
from scheduler.schedules import next_fire
from scheduler.tracebacks import explain_sdk_lines, last_traceback

logger = logging.getLogger(__name__)

# Upper bound between admission passes when nothing wakes the loop (a safety net only).
_IDLE_TICK_SECONDS = 5.0
# transient database failures: how long to wait before trying again, and how often
_RETRY_SECONDS = 0.5
_END_TRIES = 5


@dataclass(frozen=True)
class VersionCommand:
    start_command: str
    root_dir: Path
    env: dict[str, str]
    image: str | None = None  # the version's built image, for container executors


class VersionLookup:
    """How to start a version's instances; supplied by whoever registered the version."""

    async def command(self, version_id: str) -> VersionCommand:
        raise NotImplementedError


@dataclass
class _Live:
    admitted: Admitted
    handle: Handle | None
    monitor: asyncio.Task[None] | None = None
    canceled: bool = False  # its run was cancelled while its instance was starting
    # the worker reported its result: the instance must exit soon, or it is stopped
    reported: asyncio.Event = field(default_factory=asyncio.Event)


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        transitions: Transitions,
        reads: RunReads,
        agent: Agent,
        executor: Executor,
        blobs: BlobStore,
        versions: VersionLookup,
        membership_engine: AsyncEngine,
    ) -> None:
        self._settings = settings
        self._transitions = transitions
        self._reads = reads
        self._writer = transitions.writer
        self._agent = agent
        self._executor = executor
        self._blobs = blobs
        self._versions = versions
        self._live: dict[str, _Live] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._launching: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.membership = Membership(
            membership_engine,
            stale_after=timedelta(seconds=settings.scheduler.stale_after_seconds),
        )
        reads.bus.add_listener(self._on_run_changed)
        agent.on_result = self._on_result

    # -- loop -----------------------------------------------------------------------------------

    async def run_forever(self) -> None:
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            while not self._stopping:
                self._writer.wake_scheduler.clear()
                try:
                    await self.tick()
                except Exception:
                    # a database hiccup must not end scheduling for good: log, wait, go on
                    logger.exception("scheduler %s: admission pass failed", self.membership.id)
                    await asyncio.sleep(_RETRY_SECONDS)
                    continue
                await self._sleep_until_woken()
        finally:
            heartbeat.cancel()

    async def _heartbeat(self) -> None:
        """Tell other schedulers this one lives; take over the attempts of those that died."""
        interval = self._settings.scheduler.heartbeat_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self.membership.heartbeat()
                await self.reconcile()
            except Exception:
                logger.exception("scheduler %s: heartbeat failed", self.membership.id)

    async def _sleep_until_woken(self) -> None:
        timeout = _IDLE_TICK_SECONDS
        for due in (await self._reads.next_due(), await self._reads.db.read(next_fire)):
            if due is not None:
                timeout = min(timeout, max((due - datetime.now(UTC)).total_seconds(), 0.0))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._writer.wake_scheduler.wait()

    async def tick(self) -> int:
        """One admission pass over every workspace; the number of attempts started.

        Slots freed by this process are handed over in the transactions that free them; the
        loop starts what is left: runs past their backoff, schedules, and what other processes
        (an API without a scheduler) created.
        """
        started = 0
        await self._transitions.fire_schedules(datetime.now(UTC))
        for workspace_id in await self._reads.workspace_ids():
            admitted = await self._transitions.admit(workspace_id, self.membership.id)
            for launch in self._launch_all(admitted):
                # shielded: a start cut in half would leave an instance with no stored handle
                await asyncio.shield(launch)
                started += 1
        return started

    def _launch_all(self, admitted: list[Admitted]) -> list[asyncio.Task[None]]:
        """Start the admitted attempts' instances (each in a task of its own)."""
        launches = []
        for item in admitted:
            launch = self._spawn(self._launch(item))
            self._launching.add(launch)
            launch.add_done_callback(self._launching.discard)
            launches.append(launch)
        return launches

    # -- one attempt ----------------------------------------------------------------------------

    async def _launch(self, admitted: Admitted) -> None:
        live = _Live(admitted, None)
        self._live[admitted.attempt_id] = live
        try:
            version = await self._versions.command(admitted.version_id)
            socket_path = await self._agent.open(
                admitted.attempt_id,
                attempt_id=admitted.attempt_id,
                run_id=admitted.run_id,
                registration=None,
                admitted=admitted,
            )
            spec = AttemptSpec(
                attempt_id=admitted.attempt_id,
                run_id=admitted.run_id,
                attempt=admitted.attempt,
                mode=Mode.RUN,
                start_command=version.start_command,
                cwd=version.root_dir,
                socket_path=socket_path,
                # created 0600 here: the executor appends to it, whatever its process's umask
                log_path=create_private_file(self._blobs.staging_path(admitted.log_key)),
                plan=self._settings.plan(admitted.plan),
                env={
                    **version.env,
                    "CONVEYOR_TASK_RUN_ID": admitted.run_id,
                    "CONVEYOR_ATTEMPT": str(admitted.attempt),
                },
                version_id=admitted.version_id,
                image=version.image,
            )
            live.handle = await self._executor.start(spec)
            self._transitions.started(admitted.attempt_id, live.handle)
            self._agent.started(admitted.attempt_id, live.handle.get("session"))
        except Exception as exc:
            logger.exception(
                "run %s attempt %s (%s): could not start its instance",
                admitted.run_id,
                admitted.attempt,
                admitted.task_name,
            )
            await self._transitions.record_outcome(
                admitted.attempt_id,
                AttemptOutcome.EXITED_WITHOUT_RESULT,
                run_id=admitted.run_id,
                error=f"could not start the instance: {exc}",
            )
            await self._finish(live, exit_code=None)
            return
        live.monitor = self._spawn(self._monitor(live, live.handle))
        if live.canceled:
            # cancelled while the instance was starting, before anyone could see its handle
            await self._executor.stop(live.handle, self._settings.executor.kill_grace_seconds)

    def _spawn(self, coroutine: object) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _monitor(self, live: _Live, handle: Handle) -> None:
        admitted = live.admitted
        exit_wait = asyncio.ensure_future(self._executor.wait(handle))
        reported = asyncio.ensure_future(live.reported.wait())
        try:
            async with asyncio.timeout(admitted.timeout_seconds):
                await asyncio.wait([exit_wait, reported], return_when=asyncio.FIRST_COMPLETED)
                if not exit_wait.done():
                    await self._linger(live, handle, exit_wait)
                state = await asyncio.shield(exit_wait)
        except TimeoutError:
            logger.info(
                "run %s attempt %s (%s) timed out after %ss",
                admitted.run_id,
                admitted.attempt,
                admitted.task_name,
                admitted.timeout_seconds,
            )
            await self._transitions.record_outcome(
                admitted.attempt_id,
                AttemptOutcome.TIMEOUT,
                run_id=admitted.run_id,
                error=f"task {admitted.task_name} timed out after {admitted.timeout_seconds} s",
            )
            await self._executor.stop(handle, self._settings.executor.kill_grace_seconds)
            state = await exit_wait
        finally:
            reported.cancel()
        if state.status is InstanceStatus.LOST:
            logger.warning(
                "run %s attempt %s (%s) was lost: %s",
                admitted.run_id,
                admitted.attempt,
                admitted.task_name,
                state.reason,
            )
            await self._transitions.record_outcome(
                admitted.attempt_id,
                AttemptOutcome.LOST,
                run_id=admitted.run_id,
                error=f"the instance was lost: {state.reason or 'no trace of it is left'}",
            )
        code = state.exit_code if state.status is InstanceStatus.EXITED else None
        await self._finish(live, exit_code=code, out_of_memory=state.out_of_memory)

    async def _linger(
        self, live: _Live, handle: Handle, exit_wait: asyncio.Future[InstanceState]
    ) -> None:
        """The worker reported its result: it exits now, or it is stopped after a grace."""
        linger = self._settings.executor.linger_seconds
        done, _ = await asyncio.wait([exit_wait], timeout=linger)
        if not done:
            logger.warning(
                "run %s attempt %s (%s) still runs %ss after its result: stopping it",
                live.admitted.run_id,
                live.admitted.attempt,
                live.admitted.task_name,
                linger,
            )
            await self._executor.stop(handle, self._settings.executor.kill_grace_seconds)

    def _on_result(self, attempt_id: str) -> None:
        live = self._live.get(attempt_id)
        if live is not None:
            live.reported.set()

    async def _finish(
        self, live: _Live, *, exit_code: int | None, out_of_memory: bool = False
    ) -> None:
        admitted = live.admitted
        try:
            trace: str | None = None
            if not live.reported.is_set():
                # no result: what it printed says why (read before a remote store takes the file)
                log_path = self._blobs.staging_path(admitted.log_key)
                trace = await asyncio.to_thread(last_traceback, log_path)
                await asyncio.to_thread(explain_sdk_lines, log_path)
            # the instance is gone: a store that stages remotely (S3) uploads the log now
            await self._blobs.commit_staged(admitted.log_key)
            if live.reported.is_set():  # its result freed its slot: only its metering is left
                self._transitions.meter(admitted, exit_code)
                return
            for attempt in range(_END_TRIES):
                try:
                    await self._transitions.end(
                        admitted.attempt_id,
                        exit_code=exit_code,
                        stack_trace_from_log=trace,
                        out_of_memory=out_of_memory,
                    )
                    break
                except Exception:
                    if attempt == _END_TRIES - 1:
                        raise
                    logger.exception(
                        "run %s attempt %s: recording its end failed; retrying",
                        admitted.run_id,
                        admitted.attempt,
                    )
                    await asyncio.sleep(_RETRY_SECONDS * 2**attempt)
        finally:
            await self._agent.close(admitted.attempt_id)
            self._live.pop(admitted.attempt_id, None)

    def _on_run_changed(self, change: RunChanged) -> None:
        """A cancelled run's instance is stopped by whichever scheduler watches it."""
        if change.status != RunStatus.CANCELED.value:
            return
        for live in list(self._live.values()):
            if live.admitted.run_id != change.run_id:
                continue
            self._agent.cancel(live.admitted.attempt_id)
            if live.handle is None:
                live.canceled = True  # stopped as soon as its start returns
            else:
                self._spawn(
                    self._executor.stop(live.handle, self._settings.executor.kill_grace_seconds)
                )

    # -- start and stop -------------------------------------------------------------------------

    async def start(self) -> int:
        """Join the schedulers, reconcile what departed ones left; from now on, admit here."""
        await self.membership.register()
        reconciled = await self.reconcile()
        await self._discard_ended()
        self._writer.admitter = Admitter(
            self.membership.id, self._launch_all, lambda: self.membership.live_count
        )
        return reconciled

    async def reconcile(self) -> int:
        """Attempts of schedulers that are gone: watch again what still runs, retry the rest.

        An instance that outlived its control plane goes on (its result is accepted, not run
        again) when the executor can reach it from here; otherwise it is stopped and its
        attempt retried as lost.
        """
        count = 0
        for attempt_id, run_id, handle_json in await self.membership.claim_orphans():
            if attempt_id in self._live:
                continue
            handle = json.loads(handle_json) if handle_json else await self._find(attempt_id)
            exit_code = None
            error = "the instance was lost with the control plane"
            if handle is not None:
                state = await self._executor.status(handle)
                if state.status is InstanceStatus.ALIVE and can_reattach(self._executor):
                    await self._reattach(attempt_id, handle)
                    count += 1
                    continue
                if state.status is InstanceStatus.ALIVE:
                    await self._executor.stop(handle, 0)
                exit_code = state.exit_code
                if state.status is InstanceStatus.LOST and state.reason:
                    error = f"the instance was lost: {state.reason}"
            await discard_leftovers(self._executor, attempt_id)
            logger.warning("attempt %s of run %s was left running: retrying it", attempt_id, run_id)
            await self._transitions.record_outcome(
                attempt_id, AttemptOutcome.LOST, run_id=run_id, error=error
            )
            await self._transitions.end(attempt_id, exit_code=exit_code, stack_trace_from_log=None)
            count += 1
        return count

    async def _discard_ended(self) -> None:
        """Kill what still runs of attempts that ended: a worker whose result a control plane
        recorded just before it died never heard so, and waits for an answer no one will give
        (its attempt is no orphan to reconcile)."""
        names = getattr(self._executor, "cgroup_names", None)
        if names is None:
            return
        candidates = {name for name in names() if name.startswith("att-")}
        for attempt_id in await self._reads.ended_attempts(candidates):
            logger.warning("attempt %s had ended; what is left in its cgroup is killed", attempt_id)
            await discard_leftovers(self._executor, attempt_id)

    async def _find(self, attempt_id: str) -> Handle | None:
        row = await self._reads.attempt_row(attempt_id)
        log_path = self._blobs.staging_path(row.log_key)
        return await self._executor.find(attempt_id, log_path, self._agent.socket_path(attempt_id))

    async def _reattach(self, attempt_id: str, handle: Handle) -> None:
        """Watch an instance a previous control plane started: serve its socket again where
        it is on this host, or answer its relay (which finds this control plane)."""
        admitted = await readmit(self._reads, attempt_id)
        await self._executor.adopt(attempt_id, handle)
        if handle.get("socket"):
            await self._agent.reopen(
                attempt_id, Path(handle["socket"]), admitted, handle.get("session")
            )
        else:
            self._agent.register_remote(
                attempt_id, attempt_id=attempt_id, run_id=admitted.run_id, registration=None
            )
        live = _Live(admitted, handle)
        self._live[attempt_id] = live
        live.monitor = self._spawn(self._monitor(live, handle))
        logger.warning(
            "run %s attempt %s (%s) still runs: watching it again",
            admitted.run_id,
            admitted.attempt,
            admitted.task_name,
        )

    async def shutdown(self, *, stop_instances: bool) -> None:
        """Stop admitting; with `stop_instances`, kill running ones and leave them as lost."""
        self._stopping = True
        self._writer.admitter = None
        self._writer.wake_scheduler.set()
        await self.membership.stop()
        if self._launching:
            # let starts finish so every instance has a stored handle before deciding its fate
            await asyncio.wait(list(self._launching), timeout=30)
        if stop_instances:
            for live in list(self._live.values()):
                if live.handle is not None:
                    await self._transitions.record_outcome(
                        live.admitted.attempt_id,
                        AttemptOutcome.LOST,
                        run_id=live.admitted.run_id,
                        error="the control plane shut down",
                    )
                    await self._executor.stop(
                        live.handle, self._settings.executor.kill_grace_seconds
                    )
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()
        # instances left running are the next control plane's to serve, in the same folders
        running = () if stop_instances else list(self._live)
        await self._agent.close_all(running=running)

    @property
    def agent(self) -> Agent:
        """Answers instance requests, including those relayed from remote instances."""
        return self._agent
