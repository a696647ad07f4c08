"""Admission: who gets the workspace's free slots, under its limit and each task's own.

Active = attempts starting or running and not waiting on children. Free slots go first to
waiting parents whose awaited children have all ended (they resume: a resuming parent needs a
slot, or the limit would be exceeded the moment it continues), then to pending runs —
descendants of running roots before new roots, then by root creation time. A task with a
`concurrency` option also gets no more than that many active attempts; resumes are not held back
by it, so a tree can never wait on itself.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.blobs.base import attempt_log_key
from core.db.models import Attempt, AttemptEvent, Task, TaskRun, Workspace
from core.domain import AttemptState, RunStatus, TaskOptions
from core.events import RunChanged
from core.ids import new_id
from core.settings import Settings
from scheduler import queries

_LIVE = (AttemptState.STARTING.value, AttemptState.RUNNING.value)
# how many pending runs beyond the free slots are looked at, so that runs of tasks at their own
# limit do not hide admissible ones behind them
_LOOKAHEAD = 200


@dataclass(frozen=True)
class Admitted:
    """An attempt the scheduler must now start."""

    attempt_id: str
    run_id: str
    attempt: int
    task_name: str
    version_id: str
    plan: str
    timeout_seconds: int
    log_key: str


def changed(run: TaskRun, status: str) -> RunChanged:
    return RunChanged(run.id, run.root_id, run.parent_id, status, RunStatus(status).terminal)


async def admit(
    session: AsyncSession,
    settings: Settings,
    workspace_id: str,
    now: datetime,
    scheduler_id: str,
    changes: list[RunChanged],
) -> list[Admitted]:
    """One admission pass, inside the caller's write transaction."""
    # the workspace row lock serialises admissions across schedulers
    workspace = await session.get_one(Workspace, workspace_id, with_for_update=True)
    active = await session.scalar(
        select(func.count()).where(
            Attempt.workspace_id == workspace_id,
            Attempt.state.in_(_LIVE),
            Attempt.waiting.is_(False),
        )
    )
    free = workspace.max_concurrency - (active or 0)
    if free <= 0:
        return []
    free -= await _grant_resumes(session, workspace_id, free, now, changes)
    if free <= 0:
        return []
    pending = list(
        await session.scalars(
            select(TaskRun)
            .where(
                TaskRun.workspace_id == workspace_id,
                TaskRun.status == RunStatus.PENDING.value,
                (TaskRun.not_before.is_(None)) | (TaskRun.not_before <= now),
            )
            .order_by(TaskRun.parent_id.is_(None), TaskRun.root_id, TaskRun.id)
            .limit(free + _LOOKAHEAD)
            .with_for_update(skip_locked=True)
        )
    )
    options = await _options_of(session, {run.task_id for run in pending})
    room = await _task_room(session, workspace_id, options)
    admitted: list[Admitted] = []
    for run in pending:
        if len(admitted) == free:
            break
        if run.task_id in room:
            if room[run.task_id] <= 0:
                continue
            room[run.task_id] -= 1
        admitted.append(
            _start_attempt(session, settings, run, options[run.task_id], now, scheduler_id)
        )
        changes.append(changed(run, RunStatus.RUNNING.value))
    await session.flush()
    for item in admitted:
        session.add(
            AttemptEvent(
                attempt_id=item.attempt_id, workspace_id=workspace_id, kind="started", at=now
            )
        )
    return admitted


async def _options_of(session: AsyncSession, task_ids: set[str]) -> dict[str, TaskOptions]:
    if not task_ids:
        return {}
    rows = await session.execute(select(Task.id, Task.options).where(Task.id.in_(task_ids)))
    return {task_id: queries.options_from_json(text) for task_id, text in rows}


async def _task_room(
    session: AsyncSession, workspace_id: str, options: dict[str, TaskOptions]
) -> dict[str, int]:
    """How many more attempts each task with a `concurrency` limit may start now."""
    limited = {task_id: o.concurrency for task_id, o in options.items() if o.concurrency}
    if not limited:
        return {}
    rows = await session.execute(
        select(TaskRun.task_id, func.count())
        .join(Attempt, Attempt.run_id == TaskRun.id)
        .where(
            Attempt.workspace_id == workspace_id,
            Attempt.state.in_(_LIVE),
            Attempt.waiting.is_(False),
            TaskRun.task_id.in_(limited),
        )
        .group_by(TaskRun.task_id)
    )
    busy: Counter[str] = Counter({task_id: count for task_id, count in rows})
    return {task_id: limit - busy[task_id] for task_id, limit in limited.items()}


async def _grant_resumes(
    session: AsyncSession,
    workspace_id: str,
    free: int,
    now: datetime,
    changes: list[RunChanged],
) -> int:
    child = TaskRun.__table__.alias("child")
    blocked = exists().where(
        child.c.parent_id == Attempt.run_id,
        child.c.parent_attempt == Attempt.number,
        child.c.awaited.is_(True),
        child.c.status.in_(queries.NON_TERMINAL),
    )
    rows = list(
        await session.execute(
            select(Attempt, TaskRun)
            .join(TaskRun, TaskRun.id == Attempt.run_id)
            .where(
                Attempt.workspace_id == workspace_id,
                Attempt.waiting.is_(True),
                Attempt.state == AttemptState.RUNNING.value,
                Attempt.outcome.is_(None),
                ~blocked,
            )
            .order_by(TaskRun.root_id, TaskRun.id)
            .limit(free)
            .with_for_update(skip_locked=True, of=Attempt)
        )
    )
    for attempt, run in rows:
        attempt.waiting = False
        session.add(
            AttemptEvent(attempt_id=attempt.id, workspace_id=workspace_id, kind="resumed", at=now)
        )
        changes.append(changed(run, run.status))
    return len(rows)


def _start_attempt(
    session: AsyncSession,
    settings: Settings,
    run: TaskRun,
    options: TaskOptions,
    now: datetime,
    scheduler_id: str,
) -> Admitted:
    plan = settings.plan(options.plan).name
    number = run.attempt_count
    run.status = RunStatus.RUNNING.value
    run.attempt_count = number + 1
    run.started_at = run.started_at or now
    enqueued = run.not_before or run.created_at
    run.not_before = None
    attempt = Attempt(
        id=new_id("att"),
        run_id=run.id,
        workspace_id=run.workspace_id,
        number=number,
        state=AttemptState.STARTING.value,
        waiting=False,
        executor=settings.executor.kind,
        scheduler_id=scheduler_id,
        plan=plan,
        enqueued_at=enqueued,
        started_at=now,
        log_key=attempt_log_key(run.id, number),
    )
    session.add(attempt)
    return Admitted(
        attempt_id=attempt.id,
        run_id=run.id,
        attempt=number,
        task_name=run.task_name,
        version_id=run.version_id,
        plan=plan,
        timeout_seconds=options.timeout_seconds or settings.limits.default_timeout_seconds,
        log_key=attempt.log_key,
    )
