"""Every change of a run's or an attempt's state, each a compare-and-set, in one place.

Written with SQLAlchemy Core: a state change is a few statements in one transaction. A
transaction that frees a slot (an attempt's result, a parent starting to wait, a new run while
slots are free) runs an admission pass before it commits, when this process has a scheduler to
start what it admits: a slot is handed over without a round trip through the scheduler's loop.

Locks are taken in one order everywhere — a run, then its attempts, then its children, then the
workspace (admission) — so concurrent writers on PostgreSQL wait for each other instead of
deadlocking. On SQLite the writer's lock serialises transactions.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, case, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.blobs.base import attempt_log_key, run_input_key, run_output_key
from core.domain import AttemptOutcome, AttemptState, RetryPolicy, RunInfo, RunStatus, TaskInfo
from core.errors import Conflict, NotFound
from core.ids import new_id
from core.settings import Settings
from scheduler.payloads import PayloadStore
from scheduler.runs import admission
from scheduler.runs.admission import Admitted, TaskOptionsCache
from scheduler.runs.rows import (
    LIVE_STATES,
    NON_TERMINAL,
    AnyRow,
    attempt_events,
    attempts,
    changed,
    run_info,
    runs,
    task_info,
    tasks,
    workflows,
    workspaces,
)
from scheduler.runs.writes import Changes, Writer
from scheduler.schedules import next_time, schedules

logger = logging.getLogger(__name__)

RETRYABLE = frozenset(
    {
        AttemptOutcome.ERROR,
        AttemptOutcome.TIMEOUT,
        AttemptOutcome.EXITED_WITHOUT_RESULT,
        AttemptOutcome.OUT_OF_MEMORY,
    }
)
_SCHEDULES_PER_PASS = 100  # the rest fire on the next pass, moments later
# outcomes the worker reports itself, after which it exits: its slot is free at once
_SELF_REPORTED = frozenset({AttemptOutcome.OK, AttemptOutcome.ERROR})


def utcnow() -> datetime:
    return datetime.now(UTC)


def root_run_values(
    run_id: str,
    workspace_id: str,
    task: TaskInfo,
    input_json: str | None,
    input_key: str | None,
    idempotency: tuple[str, str] | None,
    now: datetime,
) -> dict[str, Any]:
    """The row of a new pending root run of `task`."""
    return {
        "id": run_id,
        "workspace_id": workspace_id,
        "task_id": task.id,
        "task_name": task.name,
        "workflow_id": task.workflow_id,
        "workflow_slug": task.workflow_slug,
        "version_id": task.version_id,
        "status": RunStatus.PENDING.value,
        "parent_id": None,
        "parent_attempt": None,
        "root_id": run_id,
        "awaited": False,
        "input_json": input_json,
        "input_key": input_key,
        "idempotency_scope": idempotency[0] if idempotency else None,
        "idempotency_key": idempotency[1] if idempotency else None,
        "attempt_count": 0,
        "lost_count": 0,
        "created_at": now,
    }


class Transitions:
    """The compare-and-sets; each method is one transaction."""

    def __init__(self, settings: Settings, writer: Writer, payloads: PayloadStore) -> None:
        self.settings = settings
        self.writer = writer
        self.payloads = payloads
        self.options = TaskOptionsCache()

    # -- workspaces -------------------------------------------------------------------------

    async def ensure_workspace(self, workspace_id: str, name: str, limit: int) -> int:
        """Create the workspace with `limit` if it has none; its stored limit either way.

        A process's setting only seeds a new workspace: the limit is data, changed with
        `set_limit`, never by whichever process started last.
        """
        async with self.writer.transaction() as (conn, _):
            stored = await conn.scalar(
                select(workspaces.c.max_concurrency).where(workspaces.c.id == workspace_id)
            )
            if stored is not None:
                return int(stored)
            await conn.execute(
                insert(workspaces).values(
                    id=workspace_id, name=name, max_concurrency=limit, created_at=utcnow()
                )
            )
            return limit

    async def set_limit(self, workspace_id: str, limit: int) -> None:
        """The workspace's concurrency limit; more room is used at once."""
        async with self.writer.transaction() as (conn, changes):
            result = await conn.execute(
                update(workspaces)
                .where(workspaces.c.id == workspace_id)
                .values(max_concurrency=limit)
            )
            if result.rowcount == 0:
                raise NotFound(f"workspace {workspace_id} not found")
            await self._admit(conn, changes, workspace_id)

    # -- creation ---------------------------------------------------------------------------

    async def create_root(
        self,
        workspace_id: str,
        task: TaskInfo,
        input_text: str,
        idempotency: tuple[str, str] | None,
    ) -> RunInfo | None:
        """A new root run, admitted at once when a slot is free; None if the key was taken."""
        run_id = new_id("trn")
        inline, key = await self.payloads.save(run_input_key(run_id), input_text)
        values = root_run_values(run_id, workspace_id, task, inline, key, idempotency, utcnow())
        try:
            async with self.writer.transaction() as (conn, changes):
                await conn.execute(insert(runs).values(values))
                changes.add(changed(SimpleNamespace(**values), RunStatus.PENDING.value))
                await self._admit(conn, changes, workspace_id)
        except IntegrityError:
            if idempotency is None:
                raise
            return None  # the same key, in a concurrent request: the caller reads that run
        admitted = next((a for a in changes.admitted if a.run_id == run_id), None)
        return _new_run_info(values, admitted, json.loads(input_text))

    async def create_child(
        self, attempt_id: str, task_name: str, input_text: str, idempotency_key: str | None
    ) -> str:
        """A child of the attempt's run; the same idempotency key gives back the same child."""
        async with self.writer.engine.connect() as conn:
            parent = await self._attempt_and_run(conn, attempt_id)
            if parent.status != RunStatus.RUNNING.value or parent.outcome is not None:
                raise Conflict(
                    f"task run {parent.run_id} is {parent.status}: it cannot start children"
                )
            task = (
                await conn.execute(
                    select(tasks.c.id, tasks.c.name).where(
                        tasks.c.version_id == parent.version_id, tasks.c.name == task_name
                    )
                )
            ).first()
            if task is None:
                raise NotFound(
                    f"task {task_name!r} not found in the workflow of run {parent.run_id}"
                )
            if idempotency_key:
                existing = await conn.scalar(
                    select(runs.c.id).where(
                        runs.c.idempotency_scope == parent.run_id,
                        runs.c.idempotency_key == idempotency_key,
                    )
                )
                if existing is not None:
                    return str(existing)
        run_id = new_id("trn")
        inline, key = await self.payloads.save(run_input_key(run_id), input_text)
        async with self.writer.transaction() as (conn, changes):
            status = await conn.scalar(
                select(runs.c.status).where(runs.c.id == parent.run_id).with_for_update()
            )
            if status != RunStatus.RUNNING.value:
                raise Conflict(f"task run {parent.run_id} is {status}: it cannot start children")
            values = {
                "id": run_id,
                "workspace_id": parent.workspace_id,
                "task_id": task.id,
                "task_name": task.name,
                "workflow_id": parent.workflow_id,
                "workflow_slug": parent.workflow_slug,
                "version_id": parent.version_id,
                "status": RunStatus.PENDING.value,
                "parent_id": parent.run_id,
                "parent_attempt": parent.number,
                "root_id": parent.root_id,
                "awaited": False,
                "input_json": inline,
                "input_key": key,
                "idempotency_scope": parent.run_id if idempotency_key else None,
                "idempotency_key": idempotency_key,
                "attempt_count": 0,
                "lost_count": 0,
                "created_at": utcnow(),
            }
            await conn.execute(insert(runs).values(values))
            changes.add(changed(SimpleNamespace(**values), RunStatus.PENDING.value))
            await self._admit(conn, changes, parent.workspace_id)
        return run_id

    async def _attempt_and_run(self, conn: AsyncConnection, attempt_id: str) -> AnyRow:
        row = (
            await conn.execute(
                select(
                    attempts.c.number,
                    attempts.c.outcome,
                    runs.c.id.label("run_id"),
                    runs.c.workspace_id,
                    runs.c.status,
                    runs.c.version_id,
                    runs.c.workflow_id,
                    runs.c.workflow_slug,
                    runs.c.root_id,
                )
                .join(runs, runs.c.id == attempts.c.run_id)
                .where(attempts.c.id == attempt_id)
            )
        ).first()
        if row is None:
            raise NotFound(f"attempt {attempt_id} not found")
        return row

    async def fire_schedules(self, now: datetime) -> int:
        """A root run for each schedule whose time has come; the number of schedules due."""
        async with self.writer.transaction() as (conn, changes):
            due = (
                await conn.execute(
                    select(schedules)
                    .where(schedules.c.next_fire_at <= now)
                    .order_by(schedules.c.next_fire_at)
                    .limit(_SCHEDULES_PER_PASS)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            fired_in: set[str] = set()
            for schedule in due:
                run_id = await self._fire(conn, changes, schedule, now)
                values: dict[str, Any] = {"next_fire_at": next_time(schedule.cron, now)}
                if run_id is not None:
                    values |= {"last_fired_at": now, "last_run_id": run_id}
                    fired_in.add(schedule.workspace_id)
                await conn.execute(
                    update(schedules).where(schedules.c.id == schedule.id).values(values)
                )
            for workspace_id in sorted(fired_in):
                await self._admit(conn, changes, workspace_id)
        return len(due)

    async def _fire(
        self, conn: AsyncConnection, changes: Changes, schedule: AnyRow, now: datetime
    ) -> str | None:
        row = (
            await conn.execute(
                select(tasks, workflows.c.slug)
                .join(workflows, workflows.c.id == tasks.c.workflow_id)
                .where(
                    workflows.c.id == schedule.workflow_id,
                    tasks.c.version_id == workflows.c.active_version_id,
                    tasks.c.name == schedule.task_name,
                )
            )
        ).first()
        if row is None:  # the active version no longer has the task; sync removes it soon
            return None
        run_id = new_id("trn")
        key = (f"schedule:{schedule.id}", schedule.next_fire_at.isoformat())
        values = root_run_values(
            run_id, schedule.workspace_id, task_info(row, row.slug), "[]", None, key, now
        )
        await conn.execute(insert(runs).values(values))
        changes.add(changed(SimpleNamespace(**values), RunStatus.PENDING.value))
        return run_id

    # -- admission --------------------------------------------------------------------------

    async def admit(self, workspace_id: str, scheduler_id: str) -> list[Admitted]:
        """One admission pass (the scheduler's loop): resumes first, then pending runs."""
        async with self.writer.transaction() as (conn, changes):
            return await self._admission_pass(conn, changes, workspace_id, scheduler_id)

    async def _admit(self, conn: AsyncConnection, changes: Changes, workspace_id: str) -> None:
        """Admit into freed slots now when this process starts instances; else wake a loop."""
        admitter = self.writer.admitter
        if admitter is None:
            changes.wake = True  # another process's scheduler hears of it by NOTIFY
            return
        admitted = await self._admission_pass(conn, changes, workspace_id, admitter.scheduler_id)
        changes.admitted.extend(admitted)

    async def _admission_pass(
        self, conn: AsyncConnection, changes: Changes, workspace_id: str, scheduler_id: str
    ) -> list[Admitted]:
        now = utcnow()
        slots = await admission.slots(conn, workspace_id)
        free = slots.free
        if free > 0 and slots.waiting:
            free -= await self._grant_resumes(conn, changes, workspace_id, free, now)
        if free <= 0:
            return []
        pending = await admission.admissible(conn, workspace_id, now, free)
        if not pending:
            return []
        options = await self.options.of(conn, {run.task_id for run in pending})
        room = await admission.task_room(conn, workspace_id, options)
        chosen = admission.choose(pending, options, room, free)
        if not chosen:
            return []
        started = [self._attempt_values(run, options[run.task_id], now) for run in chosen]
        await conn.execute(
            insert(attempts), [{**values, "scheduler_id": scheduler_id} for values, _ in started]
        )
        await conn.execute(
            update(runs)
            .where(runs.c.id == bindparam("run_id"))
            .values(
                status=RunStatus.RUNNING.value,
                attempt_count=bindparam("count"),
                started_at=bindparam("started"),
                not_before=None,
            ),
            [
                {"run_id": run.id, "count": values["number"] + 1, "started": run.started_at or now}
                for run, (values, _) in zip(chosen, started, strict=True)
            ],
        )
        for run in chosen:
            changes.add(changed(run, RunStatus.RUNNING.value))
        await conn.execute(
            insert(attempt_events),
            [
                {
                    "attempt_id": values["id"],
                    "workspace_id": workspace_id,
                    "kind": "started",
                    "at": now,
                }
                for values, _ in started
            ],
        )
        return [item for _, item in started]

    def _attempt_values(
        self, run: AnyRow, options: Any, now: datetime
    ) -> tuple[dict[str, Any], Admitted]:
        plan = self.settings.plan(options.plan).name
        number = run.attempt_count
        values = {
            "id": new_id("att"),
            "run_id": run.id,
            "workspace_id": run.workspace_id,
            "number": number,
            "state": AttemptState.STARTING.value,
            "waiting": False,
            "executor": self.settings.executor.kind,
            "plan": plan,
            "enqueued_at": run.not_before or run.created_at,
            "started_at": now,
            "log_key": attempt_log_key(run.id, number),
        }
        admitted = Admitted(
            attempt_id=values["id"],
            run_id=run.id,
            attempt=number,
            task_name=run.task_name,
            version_id=run.version_id,
            plan=plan,
            timeout_seconds=options.timeout_seconds or self.settings.limits.default_timeout_seconds,
            log_key=values["log_key"],
            workspace_id=run.workspace_id,
            root_id=run.root_id,
            parent_id=run.parent_id,
            input_json=run.input_json,
            input_key=run.input_key,
        )
        return values, admitted

    async def _grant_resumes(
        self, conn: AsyncConnection, changes: Changes, workspace_id: str, free: int, now: datetime
    ) -> int:
        rows = await admission.resumable(conn, workspace_id, free)
        if not rows:
            return 0
        await conn.execute(
            update(attempts).where(attempts.c.id.in_([r.id for r in rows])).values(waiting=False)
        )
        await conn.execute(
            insert(attempt_events),
            [
                {"attempt_id": r.id, "workspace_id": workspace_id, "kind": "resumed", "at": now}
                for r in rows
            ],
        )
        for row in rows:
            run = SimpleNamespace(id=row.run_id, root_id=row.root_id, parent_id=row.parent_id)
            changes.add(changed(run, RunStatus.RUNNING.value))
        return len(rows)

    # -- progress ---------------------------------------------------------------------------

    async def started(self, attempt_id: str, handle: dict[str, Any]) -> None:
        """The instance exists: its handle (to find it after a restart), and it runs."""
        starting = attempts.c.state == AttemptState.STARTING.value
        async with self.writer.transaction() as (conn, _):
            await conn.execute(
                update(attempts)
                .where(attempts.c.id == attempt_id)
                .values(
                    handle=json.dumps(handle),
                    state=case((starting, AttemptState.RUNNING.value), else_=attempts.c.state),
                )
            )

    async def await_child(self, attempt_id: str, child_id: str) -> bool:
        """The parent polls an unfinished child: it stops holding a slot. True if it changed."""
        async with self.writer.transaction() as (conn, changes):
            waiting = await conn.execute(
                update(attempts)
                .where(
                    attempts.c.id == attempt_id,
                    attempts.c.waiting.is_(False),
                    attempts.c.outcome.is_(None),
                    attempts.c.state.in_(LIVE_STATES),
                )
                .values(waiting=True)
                .returning(attempts.c.workspace_id)
            )
            workspace_id = waiting.scalar()
            await conn.execute(
                update(runs)
                .where(runs.c.id == child_id, runs.c.awaited.is_(False))
                .values(awaited=True)
            )
            if workspace_id is None:
                return False
            await conn.execute(
                insert(attempt_events).values(
                    attempt_id=attempt_id, workspace_id=workspace_id, kind="waiting", at=utcnow()
                )
            )
            await self._admit(conn, changes, workspace_id)
        return True

    # -- outcomes ---------------------------------------------------------------------------

    async def record_outcome(
        self,
        attempt_id: str,
        outcome: AttemptOutcome,
        *,
        run_id: str | None = None,
        output: str | None = None,
        error: str | None = None,
        stack_trace: str | None = None,
        retryable: bool = True,
    ) -> bool:
        """The attempt's outcome, once (the first wins), and the run's next state. True if set.

        A result the worker reports itself frees the attempt's slot at once: the instance is
        about to exit, and its exit is only metered. An error without a stack trace (the
        official SDKs send none) leaves the run as it is until the instance exits, so the trace
        it prints can be read from the log first.
        """
        if run_id is None:
            async with self.writer.engine.connect() as conn:
                run_id = await conn.scalar(
                    select(attempts.c.run_id).where(attempts.c.id == attempt_id)
                )
            if run_id is None:
                raise NotFound(f"attempt {attempt_id} not found")
        output_inline = output_key = None
        if output is not None:
            output_inline, output_key = await self.payloads.save(run_output_key(run_id), output)
        advance = not (outcome is AttemptOutcome.ERROR and stack_trace is None)
        release = advance and outcome in _SELF_REPORTED
        now = utcnow()
        async with self.writer.transaction() as (conn, changes):
            run = await self._locked_run(conn, run_id)
            values: dict[str, Any] = {
                "outcome": outcome.value,
                "error": error,
                "stack_trace": stack_trace,
                "waiting": False,
            }
            if release:
                values |= {"state": AttemptState.ENDED.value, "ended_at": now}
            recorded = (
                await conn.execute(
                    update(attempts)
                    .where(attempts.c.id == attempt_id, attempts.c.outcome.is_(None))
                    .values(values)
                    .returning(attempts.c.number, attempts.c.workspace_id)
                )
            ).first()
            if recorded is None:
                return False
            if release:
                await self._event(conn, attempt_id, recorded.workspace_id, "ended", now)
            if advance:
                await self._advance_run(
                    conn,
                    changes,
                    run,
                    recorded.number,
                    outcome,
                    error=error,
                    stack_trace=stack_trace,
                    output=(output_inline, output_key),
                    retryable=retryable,
                )
            if release:
                await self._admit(conn, changes, recorded.workspace_id)
        return True

    async def _locked_run(self, conn: AsyncConnection, run_id: str) -> AnyRow:
        run = (
            await conn.execute(select(runs).where(runs.c.id == run_id).with_for_update())
        ).first()
        if run is None:
            raise NotFound(f"task run {run_id} not found")
        return run

    async def _event(
        self, conn: AsyncConnection, attempt_id: str, workspace_id: str, kind: str, at: datetime
    ) -> None:
        await conn.execute(
            insert(attempt_events).values(
                attempt_id=attempt_id, workspace_id=workspace_id, kind=kind, at=at
            )
        )

    async def _advance_run(
        self,
        conn: AsyncConnection,
        changes: Changes,
        run: AnyRow,
        number: int,
        outcome: AttemptOutcome,
        *,
        error: str | None,
        stack_trace: str | None,
        output: tuple[str | None, str | None] = (None, None),
        retryable: bool = True,
    ) -> str:
        """Move a running run on after its current attempt's outcome; its status after."""
        if run.status != RunStatus.RUNNING.value or run.attempt_count - 1 != number:
            return str(run.status)
        now = utcnow()
        values: dict[str, Any]
        if outcome is AttemptOutcome.OK:
            values = {
                "status": RunStatus.SUCCEEDED.value,
                "output_json": output[0],
                "output_key": output[1],
                "completed_at": now,
                "error": None,
                "stack_trace": None,
            }
        elif outcome is AttemptOutcome.CANCELED:
            values = {"status": RunStatus.CANCELED.value, "completed_at": now}
        elif retryable and (delay := await self._retry_delay(conn, run, outcome)) is not None:
            values = {
                "status": RunStatus.PENDING.value,
                "not_before": now + timedelta(seconds=delay),
                "error": error,
                "stack_trace": stack_trace,
                "lost_count": run.lost_count + (outcome is AttemptOutcome.LOST),
            }
            changes.wake = changes.wake or delay > 0  # a timer for the loop
        else:
            values = {
                "status": RunStatus.FAILED.value,
                "completed_at": now,
                "error": error,
                "stack_trace": stack_trace,
                "lost_count": run.lost_count + (outcome is AttemptOutcome.LOST),
            }
        await conn.execute(update(runs).where(runs.c.id == run.id).values(values))
        changes.add(changed(run, values["status"]))
        if values["status"] != RunStatus.SUCCEEDED.value:
            await self._cancel_children_of_attempt(conn, changes, run.id, number, now)
        return str(values["status"])

    async def _retry_delay(
        self, conn: AsyncConnection, run: AnyRow, outcome: AttemptOutcome
    ) -> float | None:
        if outcome is AttemptOutcome.LOST:
            if run.lost_count + 1 <= self.settings.limits.max_lost_attempts:
                return 0.0
            return None
        if outcome not in RETRYABLE:
            return None
        options = (await self.options.of(conn, {run.task_id}))[run.task_id]
        policy: RetryPolicy = options.retry or self.settings.retry.policy()
        retries_used = run.attempt_count - 1 - run.lost_count
        if retries_used >= policy.max_retries:
            return None
        return policy.delay_seconds(retries_used + 1)

    # -- cancellation -----------------------------------------------------------------------

    async def cancel(self, workspace_id: str, run_id: str) -> None:
        """Cancel the run and its unfinished descendants (a finished run stays as it is)."""
        async with self.writer.transaction() as (conn, changes):
            run = (
                await conn.execute(
                    select(runs)
                    .where(runs.c.id == run_id, runs.c.workspace_id == workspace_id)
                    .with_for_update()
                )
            ).first()
            if run is None:
                raise NotFound(f"task run {run_id} not found")
            await self._cancel_tree(conn, changes, [run], utcnow())

    async def _cancel_children_of_attempt(
        self, conn: AsyncConnection, changes: Changes, run_id: str, number: int, now: datetime
    ) -> None:
        children = (
            await conn.execute(
                select(runs)
                .where(
                    runs.c.parent_id == run_id,
                    runs.c.parent_attempt == number,
                    runs.c.status.in_(NON_TERMINAL),
                )
                .order_by(runs.c.id)
                .with_for_update()
            )
        ).all()
        if children:
            await self._cancel_tree(conn, changes, list(children), now)

    async def _cancel_tree(
        self, conn: AsyncConnection, changes: Changes, frontier: list[AnyRow], now: datetime
    ) -> None:
        while frontier:
            run = frontier.pop()
            if run.status in NON_TERMINAL:
                await conn.execute(
                    update(runs)
                    .where(runs.c.id == run.id)
                    .values(status=RunStatus.CANCELED.value, completed_at=now)
                )
                changes.add(changed(run, RunStatus.CANCELED.value))
                # the instance is stopped by the scheduler that watches it; its exit ends it
                await conn.execute(
                    update(attempts)
                    .where(
                        attempts.c.run_id == run.id,
                        attempts.c.state != AttemptState.ENDED.value,
                        attempts.c.outcome.is_(None),
                    )
                    .values(outcome=AttemptOutcome.CANCELED.value, error="canceled", waiting=False)
                )
            frontier.extend(
                (
                    await conn.execute(
                        select(runs)
                        .where(runs.c.parent_id == run.id, runs.c.status.in_(NON_TERMINAL))
                        .order_by(runs.c.id)
                        .with_for_update()
                    )
                ).all()
            )

    # -- the end of an instance -------------------------------------------------------------

    async def end(
        self,
        attempt_id: str,
        *,
        exit_code: int | None,
        stack_trace_from_log: str | None,
        out_of_memory: bool = False,
    ) -> None:
        """The instance is gone: meter it; end the attempt if its result did not already."""
        now = utcnow()
        async with self.writer.transaction() as (conn, changes):
            attempt = (
                await conn.execute(select(attempts).where(attempts.c.id == attempt_id))
            ).first()
            if attempt is None:
                raise NotFound(f"attempt {attempt_id} not found")
            if attempt.compute_seconds is not None:
                return  # metered already
            seconds = max((now - (attempt.started_at or now)).total_seconds(), 0.0)
            meter = {
                "exit_code": exit_code,
                "compute_seconds": seconds,
                "cost_usd": seconds * self.settings.plan(attempt.plan).usd_per_second,
            }
            if attempt.state == AttemptState.ENDED.value:
                await conn.execute(
                    update(attempts).where(attempts.c.id == attempt_id).values(meter)
                )
                return
            run = await self._locked_run(conn, attempt.run_id)
            values = {**meter, "state": AttemptState.ENDED.value, "waiting": False, "ended_at": now}
            outcome, error, trace = attempt.outcome, attempt.error, attempt.stack_trace
            if outcome is None:
                outcome, error = _exit_outcome(exit_code, out_of_memory)
                trace = stack_trace_from_log
                values |= {"outcome": outcome, "error": error, "stack_trace": trace}
            elif outcome == AttemptOutcome.ERROR.value and not trace:
                trace = stack_trace_from_log
                values["stack_trace"] = trace
            await conn.execute(update(attempts).where(attempts.c.id == attempt_id).values(values))
            await self._event(conn, attempt_id, attempt.workspace_id, "ended", now)
            status = await self._advance_run(
                conn,
                changes,
                run,
                attempt.number,
                AttemptOutcome(outcome),
                error=error,
                stack_trace=trace,
            )
            if status == run.status:  # unchanged, but its attempt is: readers look again
                changes.add(changed(run, status))
            await self._admit(conn, changes, attempt.workspace_id)

    async def mark_running(self, attempt_id: str) -> None:
        """A relayed instance asked for its input (local instances are marked by `started`)."""
        async with self.writer.transaction() as (conn, _):
            await conn.execute(
                update(attempts)
                .where(attempts.c.id == attempt_id, attempts.c.state == AttemptState.STARTING.value)
                .values(state=AttemptState.RUNNING.value)
            )


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


def _new_run_info(values: dict[str, Any], admitted: Admitted | None, input: Any) -> RunInfo:
    """The run just created, as it committed (no read back)."""
    row = SimpleNamespace(**values)
    attempt_rows: list[Any] = []
    if admitted is not None:
        now = utcnow()
        row.status = RunStatus.RUNNING.value
        row.started_at = now
        attempt_rows.append(
            SimpleNamespace(
                **{
                    "number": 0,
                    "state": AttemptState.STARTING.value,
                    "outcome": None,
                    "enqueued_at": row.created_at,
                    "started_at": now,
                    "ended_at": None,
                    "waiting": False,
                    "error": None,
                    "stack_trace": None,
                    "compute_seconds": None,
                    "cost_usd": None,
                    "exit_code": None,
                    "waiting_reason": None,
                }
            )
        )
    for name in ("completed_at", "not_before", "started_at", "error", "stack_trace"):
        row.__dict__.setdefault(name, None)
    return run_info(row, attempt_rows, input=input, results=[])
