"""Each attempt is a dispatch of its version's parameterized Nomad job (DESIGN.md §4).

The worker runs in the dispatched job's allocation beside `conveyor agent`, which serves its socket
and relays to the control plane with the attempt's token (scheduler/relay.py). State comes from the
dispatched job's allocations through blocking queries; a blocked evaluation (no capacity) is
reported as the attempt's waiting reason; the worker's logs are copied out when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from core.settings import Settings
from scheduler.attempt_tokens import attempt_token
from scheduler.executors.base import (
    ATTEMPT_VARIABLES,
    AttemptSpec,
    Handle,
    InstanceState,
    InstanceStatus,
    ReasonSink,
    VersionSpec,
)
from scheduler.executors.nomad_api import NomadApi, NomadError, NomadNotFound
from scheduler.executors.nomad_jobs import (
    WORKER_TASK,
    JobShape,
    agent_image,
    dispatch_body,
    job_id_for,
    job_spec,
)
from scheduler.executors.nomad_state import allocation_state, blocked_reason, latest
from scheduler.executors.nomad_version import UnsupportedNomad, check_version

logger = logging.getLogger(__name__)

_RETRY_S = 1.0  # after Nomad could not be reached while watching an attempt
_STOP_MARGIN_S = 15.0  # past the kill grace, for Nomad to notice the dead tasks
_DISPATCH_DELAYS_S = (0.5, 1.0, 2.0, 4.0)  # between tries of a dispatch Nomad did not answer
_COLLECTED = "Nomad has no trace of the attempt's job any more (garbage-collected)"
# how Job.Dispatch refuses a parent job that was stopped (a retired version) or collected since
_PARENT_GONE = ("is stopped", "parameterized job not found")


async def _no_reasons(attempt_id: str, reason: str | None) -> None:
    return None


class NomadExecutor:
    name = "nomad"
    reattaches = True  # the sidecar keeps relaying to whichever control plane is up

    def __init__(self, settings: Settings, api: NomadApi, reasons: ReasonSink | None = None):
        if not settings.nomad.attempt_token_secret:
            raise ValueError(
                "the Nomad executor needs CONVEYOR_NOMAD__ATTEMPT_TOKEN_SECRET: the sidecars "
                "authenticate with tokens derived from it"
            )
        self._settings = settings.nomad
        self._grace_s = settings.executor.kill_grace_seconds
        self._plans = settings.plan_names
        self._api = api
        self._reasons = reasons or _no_reasons
        agent_image(settings.nomad)  # refused now, not at the first dispatch
        self._registered: dict[str, JobShape] = {}
        self._register_lock = asyncio.Lock()
        self._checked = False

    async def check(self) -> None:
        """Refuse a Nomad older than the executor supports; once per process.

        A Nomad that does not answer yet (a restarting cluster) does not keep the control plane
        from starting: it is asked again before the next dispatch.
        """
        if self._checked:
            return
        try:
            await check_version(self._api)
        except UnsupportedNomad:
            raise
        except NomadError as exc:
            if not exc.transient:
                raise
            logger.warning("Nomad did not answer (%s): its version is checked before dispatch", exc)
            return
        self._checked = True

    # -- start ----------------------------------------------------------------------------------

    async def start(self, spec: AttemptSpec) -> Handle:
        await self.check()
        shape = self._shape(spec)
        await self._ensure_job(shape)
        body = dispatch_body(
            attempt_id=spec.attempt_id,
            run_id=spec.run_id,
            attempt=spec.attempt,
            mode=spec.mode.value,
            token=attempt_token(self._settings.attempt_token_secret, spec.attempt_id),
            control_plane_url=self._settings.control_plane_url,
        )
        try:
            answer = await self._dispatch(shape.job_id, body, spec.attempt_id)
        except NomadError as exc:
            if not _parent_gone(exc):
                raise
            # its version was retired (here or by another process) while it still had attempts
            logger.info("job %s was stopped or collected: registering it again", shape.job_id)
            self._registered.pop(shape.job_id, None)
            await self._ensure_job(shape)
            answer = await self._dispatch(shape.job_id, body, spec.attempt_id)
        logger.info(
            "run %s attempt %s: dispatched %s (evaluation %s)",
            spec.run_id,
            spec.attempt,
            answer["DispatchedJobID"],
            answer.get("EvalID") or "of an earlier dispatch",
        )
        return {
            "job_id": answer["DispatchedJobID"],
            # empty when Nomad answered a replay with the job it dispatched first
            "eval_id": answer.get("EvalID") or "",
            "attempt_id": spec.attempt_id,
            "log_path": str(spec.log_path),
        }

    async def _dispatch(self, job_id: str, body: dict[str, Any], attempt_id: str) -> dict[str, Any]:
        """Dispatch, trying again while Nomad gives no answer: the attempt id is the idempotency
        token, so a dispatch that went through answers again with its job, never a second one."""
        for delay in _DISPATCH_DELAYS_S:
            try:
                return await self._api.dispatch(job_id, body, idempotency_token=attempt_id)
            except NomadError as exc:
                if not exc.transient or _parent_gone(exc):
                    raise
                logger.warning("attempt %s: dispatch unanswered, trying again: %s", attempt_id, exc)
            await asyncio.sleep(delay)
        return await self._api.dispatch(job_id, body, idempotency_token=attempt_id)

    def _shape(self, spec: AttemptSpec) -> JobShape:
        version_id = spec.version_id or spec.attempt_id
        image = spec.image or self._settings.worker_image
        if image is None:
            raise ValueError(
                f"version {version_id} has no image: build it with BuildKit or set "
                "CONVEYOR_NOMAD__WORKER_IMAGE"
            )
        # the run's ids come from the dispatch's meta instead
        env = {k: v for k, v in spec.env.items() if k not in ATTEMPT_VARIABLES}
        return JobShape(
            job_id=job_id_for(self._settings.job_prefix, version_id, spec.plan.name),
            version_id=version_id,
            image=image,
            start_command=spec.start_command,
            plan=spec.plan,
            env=tuple(sorted(env.items())),
            kill_grace_seconds=self._grace_s,
        )

    async def _ensure_job(self, shape: JobShape) -> None:
        """Register the version's job once per process (Nomad keeps an unchanged job as is)."""
        async with self._register_lock:
            if self._registered.get(shape.job_id) == shape:
                return
            await self._api.register_job(job_spec(shape, self._settings))
            self._registered[shape.job_id] = shape
            logger.info("registered Nomad job %s for version %s", shape.job_id, shape.version_id)

    async def retire(self, version_id: str) -> None:
        """Stop the version's jobs (one per plan): it takes no new runs. Its dispatched jobs go
        on; a later attempt of it registers its job again. Nomad collects a stopped parent."""
        for plan in self._plans:
            job_id = job_id_for(self._settings.job_prefix, version_id, plan)
            self._registered.pop(job_id, None)
            try:
                await self._api.deregister(job_id)
            except NomadNotFound:
                continue
            except NomadError as exc:
                logger.warning("could not stop the job %s of a retired version: %s", job_id, exc)
                continue
            logger.info("stopped Nomad job %s: version %s is retired", job_id, version_id)

    # -- watch ----------------------------------------------------------------------------------

    async def status(self, handle: Handle) -> InstanceState:
        try:
            allocations, _ = await self._api.job_allocations(handle["job_id"], index=0, wait_s=0)
            return await self._state(handle, allocations)
        except NomadNotFound:
            return InstanceState(InstanceStatus.LOST, reason=_COLLECTED)

    async def prepare(self, version: VersionSpec) -> None:
        """Nothing to warm: the version's job is registered with its first dispatch."""

    async def find(self, attempt_id: str, log_path: Path, socket_path: Path) -> Handle | None:
        """Not without its handle: a dispatched job's id comes from Nomad."""
        return None

    async def adopt(self, attempt_id: str, handle: Handle) -> None:
        """Nothing to keep: the handle in the database is all there is."""

    async def close(self) -> None:
        """Only the connections: dispatched jobs outlive this process and are found again by id."""
        await self._api.close()

    async def wait(self, handle: Handle) -> InstanceState:
        index = 0
        shown: str | None = None
        attempt_id = str(handle["attempt_id"])
        try:
            while True:
                try:
                    allocations, index = await self._next(handle, index)
                    state = await self._state(handle, allocations)
                except NomadNotFound:
                    return InstanceState(InstanceStatus.LOST, reason=_COLLECTED)
                except NomadError as exc:
                    logger.warning("attempt %s: Nomad unavailable, retrying: %s", attempt_id, exc)
                    await asyncio.sleep(_RETRY_S)
                    continue
                if state.reason != shown:
                    shown = state.reason
                    await self._reasons(attempt_id, shown)
                if state.status is InstanceStatus.LOST:
                    # the logs were on the lost node: asking for them would only wait on it
                    note = f"[conveyor] {state.reason}: the worker's logs went with it\n"
                    await asyncio.to_thread(_write, Path(handle["log_path"]), note.encode())
                    return state
                if state.status is not InstanceStatus.ALIVE:
                    if allocations:
                        await self._copy_logs(handle, latest(allocations))
                    return state
        finally:
            if shown is not None:
                with contextlib.suppress(Exception):
                    await self._reasons(attempt_id, None)

    async def _next(self, handle: Handle, index: int) -> tuple[list[dict[str, Any]], int]:
        allocations, new_index = await self._api.job_allocations(
            handle["job_id"], index=index, wait_s=self._settings.blocking_wait_seconds
        )
        # an index that goes backwards (a new leader, a snapshot restore) restarts the query
        return allocations, new_index if new_index > index else (0 if new_index < index else index)

    async def _state(self, handle: Handle, allocations: list[dict[str, Any]]) -> InstanceState:
        if allocations:
            return allocation_state(latest(allocations))
        return await self._unplaced_state(handle)

    async def _unplaced_state(self, handle: Handle) -> InstanceState:
        """No allocation: blocked for capacity, still being scheduled, never to be, or collected.

        Nomad answers `200 []` for the allocations of a job it has garbage-collected; the
        evaluation, collected with it, answers 404 (NomadNotFound, read as LOST by the callers).
        """
        evaluation = await self._evaluation(handle)
        reason = blocked_reason(evaluation)
        blocked_id = evaluation.get("BlockedEval") or ""
        if blocked_id:
            follow_up = await self._api.evaluation(blocked_id)
            if follow_up.get("Status") == "canceled":
                return InstanceState(InstanceStatus.UNKNOWN)
            reason = reason or blocked_reason(follow_up)
        elif evaluation.get("Status") in ("failed", "canceled"):
            return InstanceState(InstanceStatus.UNKNOWN)
        return InstanceState(InstanceStatus.ALIVE, reason=reason)

    async def _evaluation(self, handle: Handle) -> dict[str, Any]:
        """The dispatch's evaluation; a replayed dispatch named none, so the job's first one."""
        eval_id = str(handle.get("eval_id") or "")
        if eval_id:
            return await self._api.evaluation(eval_id)
        evaluations = await self._api.job_evaluations(str(handle["job_id"]))
        if not evaluations:
            raise NomadNotFound(f"job {handle['job_id']}: no evaluation", 404)
        first = min(evaluations, key=lambda e: int(e.get("CreateIndex", 0)))
        handle["eval_id"] = first["ID"]
        return first

    async def _copy_logs(self, handle: Handle, allocation: dict[str, Any]) -> None:
        """The worker's stdout then stderr into the attempt's log, before Nomad collects them."""
        path = Path(handle["log_path"])
        parts: list[bytes] = []
        for stream in ("stdout", "stderr"):
            try:
                parts.append(await self._api.task_log(allocation["ID"], WORKER_TASK, stream))
            except NomadError as exc:
                parts.append(f"[conveyor] the worker's {stream} is unavailable: {exc}\n".encode())
        notes = allocation_state(allocation).reason
        if notes:
            parts.append(f"[conveyor] {notes}\n".encode())
        await asyncio.to_thread(_write, path, b"".join(parts))

    # -- stop -----------------------------------------------------------------------------------

    async def stop(self, handle: Handle, grace_s: float) -> None:
        """Deregister the dispatched job (its tasks get their kill timeout), then wait for it."""
        job_id = str(handle["job_id"])
        with contextlib.suppress(NomadNotFound):
            await self._api.deregister(job_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s + _STOP_MARGIN_S
        index = 0
        while loop.time() < deadline:
            try:
                allocations, index = await self._next(handle, index)
            except NomadNotFound:
                return
            if not allocations or allocation_state(latest(allocations)).status is not (
                InstanceStatus.ALIVE
            ):
                return
        logger.warning("job %s: tasks still running %.0f s after it was stopped", job_id, grace_s)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _parent_gone(error: NomadError) -> bool:
    return any(text in str(error) for text in _PARENT_GONE)
