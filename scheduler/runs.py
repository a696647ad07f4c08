"""RunStore: every change of a run's or an attempt's state, each a compare-and-set, in one place."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.blobs.base import BlobNotFound, BlobStore, run_input_key, run_output_key
from core.db.models import Attempt, AttemptEvent, Task, TaskRun, Workspace
from core.domain import (
    AttemptOutcome,
    AttemptState,
    Page,
    RetryPolicy,
    RunInfo,
    RunStatus,
    TaskInfo,
    VersionInfo,
    WorkflowInfo,
)
from core.errors import Conflict, InvalidRequest, NotFound
from core.events import EventBus, RunChanged
from core.ids import new_id
from core.notify import notify
from core.settings import Settings
from scheduler import queries
from scheduler.admission import Admitted, admit, changed
from scheduler.payloads import PayloadStore, check_input
from scheduler.service import LogChunk, RunFilter
from scheduler.write_lock import WriteLock

RETRYABLE = frozenset(
    {
        AttemptOutcome.ERROR,
        AttemptOutcome.TIMEOUT,
        AttemptOutcome.EXITED_WITHOUT_RESULT,
        AttemptOutcome.OUT_OF_MEMORY,
    }
)
LOG_CHUNK = 256 * 1024


def utcnow() -> datetime:
    return datetime.now(UTC)


def root_run(
    run_id: str,
    workspace_id: str,
    task: TaskInfo,
    input_json: str | None,
    input_key: str | None,
    idempotency_scope: str | None,
    idempotency_key: str | None,
    now: datetime,
) -> TaskRun:
    """A new pending root run of `task`."""
    return TaskRun(
        id=run_id,
        workspace_id=workspace_id,
        task_id=task.id,
        task_name=task.name,
        workflow_id=task.workflow_id,
        workflow_slug=task.workflow_slug,
        version_id=task.version_id,
        status=RunStatus.PENDING.value,
        root_id=run_id,
        input_json=input_json,
        input_key=input_key,
        idempotency_scope=idempotency_scope,
        idempotency_key=idempotency_key,
        created_at=now,
    )


class RunStore:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        bus: EventBus,
        write_lock: WriteLock,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        self.bus = bus
        self.payloads = PayloadStore(blobs, inline_bytes=settings.blobs.inline_bytes)
        self.wake_scheduler = asyncio.Event()
        self._lock = write_lock
        self.origin = new_id("proc")
        self.cross_process = sessions.kw["bind"].dialect.name == "postgresql"

    # -- transactions -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[tuple[AsyncSession, list[RunChanged]]]:
        """A write transaction; the run changes it collects are published after commit.

        On PostgreSQL the changes are also NOTIFYed inside the transaction, so other processes
        (API, schedulers) hear of them exactly when they commit.
        """
        changes: list[RunChanged] = []
        async with self._lock, self.sessions.begin() as session:
            yield session, changes
            if changes and self.cross_process:
                await notify(session, self.origin, changes)
        for change in changes:
            self.bus.publish(change)
        if changes:
            self.wake_scheduler.set()

    # -- creation -------------------------------------------------------------------------------

    async def ensure_workspace(self, workspace_id: str, name: str) -> None:
        async with self.write() as (session, _):
            workspace = await session.get(Workspace, workspace_id)
            if workspace is None:
                session.add(
                    Workspace(
                        id=workspace_id,
                        name=name,
                        max_concurrency=self.settings.limits.max_concurrency,
                        created_at=utcnow(),
                    )
                )
            else:
                workspace.max_concurrency = self.settings.limits.max_concurrency

    async def create_root_run(
        self, workspace_id: str, task_ref: str, input: Any, idempotency_key: str | None
    ) -> RunInfo:
        text = check_input(input, max_bytes=self.settings.limits.max_input_bytes)
        async with self.sessions() as session:
            task = await queries.resolve_task(session, workspace_id, task_ref)
        scope = f"api:{workspace_id}" if idempotency_key else None
        if idempotency_key:
            existing = await self._find_idempotent(scope, idempotency_key)
            if existing is not None:
                return existing
        run_id = new_id("trn")
        inline, key = await self.payloads.save(run_input_key(run_id), text)
        async with self.write() as (session, changes):
            run = root_run(
                run_id, workspace_id, task, inline, key, scope, idempotency_key, utcnow()
            )
            session.add(run)
            changes.append(changed(run, run.status))
        return await self.get_run(workspace_id, run_id)

    async def _find_idempotent(self, scope: str | None, key: str) -> RunInfo | None:
        window = timedelta(seconds=self.settings.limits.idempotency_window_seconds)
        async with self.sessions() as session:
            run = await session.scalar(
                select(TaskRun).where(
                    TaskRun.idempotency_scope == scope,
                    TaskRun.idempotency_key == key,
                    TaskRun.created_at >= utcnow() - window,
                )
            )
            return None if run is None else await queries.run_info(session, run, self.payloads)

    async def create_child_run(
        self, attempt_id: str, task_name: str, input: Any, idempotency_key: str | None
    ) -> str:
        """A child of the attempt's run; the same idempotency key gives back the same child."""
        text = check_input(input, max_bytes=self.settings.limits.max_input_bytes)
        async with self.sessions() as session:
            attempt, parent = await self._attempt_and_run(session, attempt_id)
            if parent.status != RunStatus.RUNNING.value or attempt.outcome is not None:
                raise Conflict(f"task run {parent.id} is {parent.status}: it cannot start children")
            task = await session.scalar(
                select(Task).where(Task.version_id == parent.version_id, Task.name == task_name)
            )
            if task is None:
                raise NotFound(f"task {task_name!r} not found in the workflow of run {parent.id}")
            if idempotency_key:
                existing = await session.scalar(
                    select(TaskRun.id).where(
                        TaskRun.idempotency_scope == parent.id,
                        TaskRun.idempotency_key == idempotency_key,
                    )
                )
                if existing is not None:
                    return existing
        run_id = new_id("trn")
        inline, key = await self.payloads.save(run_input_key(run_id), text)
        async with self.write() as (session, changes):
            parent = await session.get_one(TaskRun, attempt.run_id, with_for_update=True)
            if parent.status != RunStatus.RUNNING.value:
                raise Conflict(f"task run {parent.id} is {parent.status}: it cannot start children")
            child = TaskRun(
                id=run_id,
                workspace_id=parent.workspace_id,
                task_id=task.id,
                task_name=task.name,
                workflow_id=parent.workflow_id,
                workflow_slug=parent.workflow_slug,
                version_id=parent.version_id,
                status=RunStatus.PENDING.value,
                parent_id=parent.id,
                parent_attempt=attempt.number,
                root_id=parent.root_id,
                input_json=inline,
                input_key=key,
                idempotency_scope=parent.id if idempotency_key else None,
                idempotency_key=idempotency_key,
                created_at=utcnow(),
            )
            session.add(child)
            changes.append(changed(child, child.status))
        return run_id

    # -- reads ----------------------------------------------------------------------------------

    async def get_run(self, workspace_id: str, run_id: str) -> RunInfo:
        async with self.sessions() as session:
            run = await queries.get_run_row(session, workspace_id, run_id)
            return await queries.run_info(session, run, self.payloads)

    async def run_by_id(self, run_id: str) -> RunInfo:
        async with self.sessions() as session:
            run = await session.get(TaskRun, run_id)
            if run is None:
                raise NotFound(f"task run {run_id} not found")
            return await queries.run_info(session, run, self.payloads)

    async def wait_run(self, workspace_id: str, run_id: str, timeout: float) -> RunInfo:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self.bus.watch_run(run_id) as changed:
                # only the status while waiting: payloads (maybe large blobs) load once, at the end
                async with self.sessions() as session:
                    run = await queries.get_run_row(session, workspace_id, run_id)
                remaining = deadline - loop.time()
                if RunStatus(run.status).terminal or remaining <= 0:
                    return await self.get_run(workspace_id, run_id)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await changed.wait()

    async def list_runs(
        self, workspace_id: str, run_filter: RunFilter, *, cursor: str | None, limit: int
    ) -> Page[RunInfo]:
        if not 1 <= limit <= 100:
            raise InvalidRequest("limit must be between 1 and 100")
        query = queries.runs_filter_query(workspace_id, run_filter)
        if cursor:
            query = query.where(TaskRun.id < cursor)
        query = query.order_by(TaskRun.id.desc()).limit(limit + 1)
        async with self.sessions() as session:
            rows = list(await session.scalars(query))
            page, more = rows[:limit], len(rows) > limit
            attempts = await queries.attempts_by_run(session, [r.id for r in page])
            items = [await queries.run_info(session, r, None, attempts[r.id]) for r in page]
        return Page(items, page[-1].id if more and page else None)

    async def list_tasks(
        self, workspace_id: str, workflow_id: str | None, *, cursor: str | None, limit: int
    ) -> Page[TaskInfo]:
        from core.db.models import Workflow

        query = (
            select(Task, Workflow.slug)
            .join(Workflow, Workflow.id == Task.workflow_id)
            .where(
                Workflow.workspace_id == workspace_id,
                Task.version_id == Workflow.active_version_id,
            )
            .order_by(Task.id)
            .limit(limit + 1)
        )
        if workflow_id:
            query = query.where(Task.workflow_id == workflow_id)
        if cursor:
            query = query.where(Task.id > cursor)
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        items = [queries.task_info(task, slug) for task, slug in rows[:limit]]
        return Page(items, items[-1].id if len(rows) > limit and items else None)

    async def resolve_task(self, workspace_id: str, task_ref: str) -> TaskInfo:
        async with self.sessions() as session:
            return await queries.resolve_task(session, workspace_id, task_ref)

    async def list_workflows(self, workspace_id: str) -> list[WorkflowInfo]:
        from core.db.models import Workflow

        async with self.sessions() as session:
            rows = await session.scalars(
                select(Workflow)
                .where(Workflow.workspace_id == workspace_id)
                .order_by(Workflow.slug)
            )
            return [queries.workflow_info(row) for row in rows]

    async def list_versions(self, workspace_id: str, workflow_id: str | None) -> list[VersionInfo]:
        async with self.sessions() as session:
            return await queries.version_infos(session, workspace_id, workflow_id)

    async def usage(self, workspace_id: str) -> dict[str, Any]:
        async with self.sessions() as session:
            workspace = await session.get(Workspace, workspace_id)
            limit = workspace.max_concurrency if workspace else self.settings.limits.max_concurrency
            return await queries.usage(session, workspace_id, limit)

    async def watch_terminal(self, workspace_id: str, run_ids: list[str]) -> AsyncIterator[RunInfo]:
        remaining = set(run_ids)
        async with self.bus.subscribe() as changes:
            for run_id in run_ids:
                run = await self.get_run(workspace_id, run_id)
                if run.status.terminal and run_id in remaining:
                    remaining.discard(run_id)
                    yield run
            while remaining:
                change = await changes.get()
                if change.terminal and change.run_id in remaining:
                    remaining.discard(change.run_id)
                    yield await self.get_run(workspace_id, change.run_id)

    async def watch_changes(self, workspace_id: str) -> AsyncIterator[RunInfo]:
        async with self.bus.subscribe() as changes:
            while True:
                change = await changes.get()
                with contextlib.suppress(NotFound):
                    yield await self.get_run(workspace_id, change.run_id)

    # -- logs -----------------------------------------------------------------------------------

    async def _log_attempt(self, workspace_id: str, run_id: str, number: int | None) -> Attempt:
        async with self.sessions() as session:
            await queries.get_run_row(session, workspace_id, run_id)
            query = select(Attempt).where(Attempt.run_id == run_id)
            if number is None:
                query = query.order_by(Attempt.number.desc()).limit(1)
            else:
                query = query.where(Attempt.number == number)
            attempt = await session.scalar(query)
        if attempt is None:
            which = "any attempt" if number is None else f"attempt {number}"
            raise NotFound(f"task run {run_id} has no log for {which} yet")
        return attempt

    async def read_log(
        self, workspace_id: str, run_id: str, number: int | None, offset: int
    ) -> LogChunk:
        attempt = await self._log_attempt(workspace_id, run_id, number)
        try:
            data = await self.blobs.read_range(attempt.log_key, offset, LOG_CHUNK)
        except BlobNotFound:
            data = b""
        return LogChunk(
            data, offset + len(data), attempt.number, attempt.state == AttemptState.ENDED.value
        )

    async def follow_log(
        self, workspace_id: str, run_id: str, number: int | None
    ) -> AsyncIterator[bytes]:
        offset = 0
        attempt = await self._log_attempt(workspace_id, run_id, number)
        while True:
            with self.bus.watch_run(run_id) as changed:
                chunk = await self.read_log(workspace_id, run_id, attempt.number, offset)
                if chunk.data:
                    offset = chunk.next_offset
                    yield chunk.data
                    continue
                if chunk.finished:
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.25):
                        await changed.wait()

    # -- attempts: admission --------------------------------------------------------------------

    async def workspace_ids(self) -> list[str]:
        async with self.sessions() as session:
            return list(await session.scalars(select(Workspace.id)))

    async def admit(self, workspace_id: str, now: datetime, scheduler_id: str) -> list[Admitted]:
        """Give free slots to waiting parents whose children ended, then to pending runs."""
        async with self.write() as (session, changes):
            return await admit(session, self.settings, workspace_id, now, scheduler_id, changes)

    async def next_due(self) -> datetime | None:
        """When the earliest backed-off pending run becomes admissible."""
        async with self.sessions() as session:
            return await session.scalar(
                select(func.min(TaskRun.not_before)).where(
                    TaskRun.status == RunStatus.PENDING.value, TaskRun.not_before.is_not(None)
                )
            )

    # -- attempts: progress ---------------------------------------------------------------------

    async def _attempt_and_run(
        self, session: AsyncSession, attempt_id: str
    ) -> tuple[Attempt, TaskRun]:
        """Both rows, locked until the transaction ends (a no-op on SQLite).

        Locks are taken in one order everywhere — a run, then its attempts, then its children —
        so concurrent writers on PostgreSQL wait for each other instead of deadlocking.
        """
        run_id = await session.scalar(select(Attempt.run_id).where(Attempt.id == attempt_id))
        if run_id is None:
            raise NotFound(f"attempt {attempt_id} not found")
        run = await session.get_one(TaskRun, run_id, with_for_update=True)
        attempt = await session.get_one(Attempt, attempt_id, with_for_update=True)
        return attempt, run

    async def live_attempt_run(self, attempt_id: str) -> str | None:
        """The run of an attempt whose instance has not ended, or None."""
        async with self.sessions() as session:
            return await session.scalar(
                select(Attempt.run_id).where(
                    Attempt.id == attempt_id, Attempt.state != AttemptState.ENDED.value
                )
            )

    async def has_outcome(self, attempt_id: str) -> bool:
        async with self.sessions() as session:
            outcome = await session.scalar(select(Attempt.outcome).where(Attempt.id == attempt_id))
        return outcome is not None

    async def set_handle(self, attempt_id: str, handle: dict[str, Any]) -> None:
        async with self.write() as (session, _):
            attempt = await session.get_one(Attempt, attempt_id)
            attempt.handle = json.dumps(handle)

    async def input_for(self, attempt_id: str) -> tuple[RunInfo, int]:
        """The run an instance asks its input for; marks the attempt running."""
        async with self.write() as (session, _):
            attempt, run = await self._attempt_and_run(session, attempt_id)
            if attempt.state == AttemptState.STARTING.value:
                attempt.state = AttemptState.RUNNING.value
            number = attempt.number
        return await self.run_by_id(run.id), number

    async def child_of(self, attempt_id: str, child_id: str) -> TaskRun:
        async with self.sessions() as session:
            attempt = await session.get_one(Attempt, attempt_id)
            child = await session.get(TaskRun, child_id)
            if child is None or child.parent_id != attempt.run_id:
                raise NotFound(f"task run {child_id} is not a child of run {attempt.run_id}")
            return child

    async def await_child(self, attempt_id: str, child_id: str) -> bool:
        """The parent polls an unfinished child: it stops holding a slot. True if it changed."""
        async with self.write() as (session, _):
            attempt = await session.get_one(Attempt, attempt_id, with_for_update=True)
            await session.execute(
                update(TaskRun).where(TaskRun.id == child_id).values(awaited=True)
            )
            if attempt.waiting or attempt.outcome is not None:
                return False
            attempt.waiting = True
            session.add(
                AttemptEvent(
                    attempt_id=attempt.id,
                    workspace_id=attempt.workspace_id,
                    kind="waiting",
                    at=utcnow(),
                )
            )
        self.wake_scheduler.set()
        return True

    async def may_deliver(self, attempt_id: str, child_id: str) -> bool:
        """Whether a finished child's result may go to the parent now without exceeding the limit.

        A waiting parent still blocked on other children may take it; one that would resume
        needs a slot, which the scheduler grants by clearing `waiting`.
        """
        async with self.sessions() as session:
            attempt = await session.get_one(Attempt, attempt_id)
            if not attempt.waiting:
                return True
            others = await session.scalar(
                select(func.count()).where(
                    TaskRun.parent_id == attempt.run_id,
                    TaskRun.parent_attempt == attempt.number,
                    TaskRun.awaited.is_(True),
                    TaskRun.status.in_(queries.NON_TERMINAL),
                    TaskRun.id != child_id,
                )
            )
        return bool(others)

    # -- attempts: outcomes ---------------------------------------------------------------------

    async def record_outcome(
        self,
        attempt_id: str,
        outcome: AttemptOutcome,
        *,
        output: str | None = None,
        error: str | None = None,
        stack_trace: str | None = None,
        retryable: bool = True,
    ) -> bool:
        """The attempt's outcome, once (the first wins), and the run's next state. True if set.

        An error without a stack trace (the official SDKs send none) leaves the run as it is
        until the instance exits, so the trace it prints can be read from the log first.
        """
        output_inline = output_key = None
        if output is not None:
            async with self.sessions() as session:
                run_id = (await session.get_one(Attempt, attempt_id)).run_id
            output_inline, output_key = await self.payloads.save(run_output_key(run_id), output)
        async with self.write() as (session, changes):
            attempt, run = await self._attempt_and_run(session, attempt_id)
            if attempt.outcome is not None:
                return False
            attempt.outcome = outcome.value
            attempt.error = error
            attempt.stack_trace = stack_trace
            attempt.waiting = False
            if outcome is AttemptOutcome.ERROR and stack_trace is None:
                return True
            await self._advance_run(
                session, run, attempt, changes, output_inline, output_key, retryable=retryable
            )
        return True

    async def _advance_run(
        self,
        session: AsyncSession,
        run: TaskRun,
        attempt: Attempt,
        changes: list[RunChanged],
        output_inline: str | None = None,
        output_key: str | None = None,
        *,
        retryable: bool = True,
    ) -> None:
        """Move a running run on after its current attempt's outcome."""
        if run.status != RunStatus.RUNNING.value or run.attempt_count - 1 != attempt.number:
            return
        outcome = AttemptOutcome(attempt.outcome or AttemptOutcome.LOST.value)
        error, stack_trace = attempt.error, attempt.stack_trace
        now = utcnow()
        if outcome is AttemptOutcome.OK:
            run.status = RunStatus.SUCCEEDED.value
            run.output_json, run.output_key = output_inline, output_key
            run.completed_at = now
            run.error = run.stack_trace = None
        elif outcome is AttemptOutcome.CANCELED:
            run.status = RunStatus.CANCELED.value
            run.completed_at = now
        elif retryable and (delay := await self._retry_delay(session, run, outcome)) is not None:
            run.status = RunStatus.PENDING.value
            run.not_before = now + timedelta(seconds=delay)
            run.error, run.stack_trace = error, stack_trace
        else:
            run.status = RunStatus.FAILED.value
            run.completed_at = now
            run.error, run.stack_trace = error, stack_trace
        changes.append(changed(run, run.status))
        if run.status != RunStatus.SUCCEEDED.value:
            await self._cancel_children_of_attempt(session, attempt, changes)

    async def _retry_delay(
        self, session: AsyncSession, run: TaskRun, outcome: AttemptOutcome
    ) -> float | None:
        if outcome is AttemptOutcome.LOST:
            run.lost_count += 1
            if run.lost_count <= self.settings.limits.max_lost_attempts:
                return 0.0
            return None
        if outcome not in RETRYABLE:
            return None
        task = await session.get_one(Task, run.task_id)
        policy: RetryPolicy = (
            queries.options_from_json(task.options).retry or self.settings.retry.policy()
        )
        retries_used = run.attempt_count - 1 - run.lost_count
        if retries_used >= policy.max_retries:
            return None
        return policy.delay_seconds(retries_used + 1)

    async def _cancel_children_of_attempt(
        self, session: AsyncSession, attempt: Attempt, changes: list[RunChanged]
    ) -> None:
        children = await session.scalars(
            select(TaskRun).where(
                TaskRun.parent_id == attempt.run_id,
                TaskRun.parent_attempt == attempt.number,
                TaskRun.status.in_(queries.NON_TERMINAL),
            )
        )
        for child in list(children):
            await self._cancel_tree(session, child, changes)

    async def _cancel_tree(
        self, session: AsyncSession, root: TaskRun, changes: list[RunChanged]
    ) -> None:
        now = utcnow()
        frontier = [root]
        while frontier:
            run = frontier.pop()
            if run.status in queries.NON_TERMINAL:
                run.status = RunStatus.CANCELED.value
                run.completed_at = now
                changes.append(changed(run, run.status))
                live = await session.scalars(
                    select(Attempt)
                    .where(
                        Attempt.run_id == run.id,
                        Attempt.state != AttemptState.ENDED.value,
                        Attempt.outcome.is_(None),
                    )
                    .with_for_update()
                )
                for attempt in list(live):
                    attempt.outcome = AttemptOutcome.CANCELED.value
                    attempt.error = "canceled"
                    attempt.waiting = False
            frontier.extend(
                await session.scalars(
                    select(TaskRun)
                    .where(TaskRun.parent_id == run.id, TaskRun.status.in_(queries.NON_TERMINAL))
                    .order_by(TaskRun.id)
                    .with_for_update()
                )
            )

    async def cancel_run(self, workspace_id: str, run_id: str) -> RunInfo:
        async with self.write() as (session, changes):
            run = await queries.get_run_row(session, workspace_id, run_id, lock=True)
            await self._cancel_tree(session, run, changes)
        return await self.get_run(workspace_id, run_id)

    async def mark_ended(
        self,
        attempt_id: str,
        *,
        exit_code: int | None,
        stack_trace_from_log: str | None,
        out_of_memory: bool = False,
    ) -> None:
        """The instance is gone: meter it, and fail the attempt if no outcome came (one commit)."""
        async with self.sessions() as session:
            log_key = (await session.get_one(Attempt, attempt_id)).log_key
        await self.blobs.commit_staged(log_key)
        async with self.write() as (session, changes):
            attempt, run = await self._attempt_and_run(session, attempt_id)
            if attempt.state == AttemptState.ENDED.value:
                return
            if attempt.outcome is None:
                attempt.outcome, attempt.error = self._exit_outcome(exit_code, out_of_memory)
                attempt.stack_trace = stack_trace_from_log
            elif attempt.outcome == AttemptOutcome.ERROR.value and not attempt.stack_trace:
                attempt.stack_trace = stack_trace_from_log
            now = utcnow()
            attempt.state = AttemptState.ENDED.value
            attempt.waiting = False
            attempt.ended_at = now
            attempt.exit_code = exit_code
            seconds = max((now - (attempt.started_at or now)).total_seconds(), 0.0)
            attempt.compute_seconds = seconds
            attempt.cost_usd = seconds * self.settings.plan(attempt.plan).usd_per_second
            session.add(
                AttemptEvent(
                    attempt_id=attempt.id, workspace_id=attempt.workspace_id, kind="ended", at=now
                )
            )
            await self._advance_run(session, run, attempt, changes)
            changes.append(changed(run, run.status))

    @staticmethod
    def _exit_outcome(exit_code: int | None, out_of_memory: bool) -> tuple[str, str]:
        if out_of_memory:
            return (
                AttemptOutcome.OUT_OF_MEMORY.value,
                "the instance ran out of memory and was killed",
            )
        if exit_code is None:
            return (
                AttemptOutcome.EXITED_WITHOUT_RESULT.value,
                "the instance vanished before completing the task",
            )
        return (
            AttemptOutcome.EXITED_WITHOUT_RESULT.value,
            f"start command exited (code {exit_code}) before completing the task",
        )

    # -- reconciliation -------------------------------------------------------------------------
