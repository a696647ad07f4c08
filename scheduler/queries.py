"""Read side: runs, tasks, workflows and usage as domain values."""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Attempt, Task, TaskRun, Workflow, WorkflowVersion
from core.domain import (
    AttemptInfo,
    AttemptOutcome,
    AttemptState,
    RetryPolicy,
    RunInfo,
    RunStatus,
    TaskInfo,
    TaskOptions,
    TaskParameter,
    VersionInfo,
    VersionStatus,
    WorkflowInfo,
)
from core.errors import InvalidRequest, NotFound
from scheduler.payloads import PayloadStore

if TYPE_CHECKING:
    from scheduler.service import RunFilter

NON_TERMINAL = (RunStatus.PENDING.value, RunStatus.RUNNING.value)


def attempt_info(row: Attempt) -> AttemptInfo:
    return AttemptInfo(
        number=row.number,
        state=AttemptState(row.state),
        outcome=AttemptOutcome(row.outcome) if row.outcome else None,
        enqueued_at=row.enqueued_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        waiting=row.waiting,
        error=row.error,
        stack_trace=row.stack_trace,
        compute_seconds=row.compute_seconds,
        cost_usd=row.cost_usd,
        exit_code=row.exit_code,
        waiting_reason=row.waiting_reason,
    )


def options_from_json(text: str) -> TaskOptions:
    raw = json.loads(text)
    retry = raw.get("retry")
    return TaskOptions(
        retry=RetryPolicy(retry["max_retries"], retry["wait_duration_ms"], retry["factor"])
        if retry
        else None,
        timeout_seconds=raw.get("timeout_seconds"),
        plan=raw.get("plan"),
        schedule=raw.get("schedule"),
        concurrency=raw.get("concurrency"),
    )


def task_info(row: Task, workflow_slug: str) -> TaskInfo:
    return TaskInfo(
        id=row.id,
        name=row.name,
        workflow_id=row.workflow_id,
        workflow_slug=workflow_slug,
        version_id=row.version_id,
        created_at=row.created_at,
        options=options_from_json(row.options),
        parameters=tuple(
            TaskParameter(
                p["name"], p.get("type"), p["has_default"], p.get("default_value"), p.get("schema")
            )
            for p in json.loads(row.parameters)
        ),
        description=row.description,
    )


async def run_info(
    session: AsyncSession,
    run: TaskRun,
    payloads: PayloadStore | None,
    attempts: list[Attempt] | None = None,
) -> RunInfo:
    """The run as a value; `payloads=None` leaves input and results out (listings)."""
    if attempts is None:
        attempts = list(
            await session.scalars(
                select(Attempt).where(Attempt.run_id == run.id).order_by(Attempt.number)
            )
        )
    current = attempts[-1] if attempts else None
    waiting = bool(current and current.waiting and current.state != AttemptState.ENDED)
    input_value: Any = None
    results: list[Any] | None = None
    if payloads is not None:
        input_value = await payloads.load(run.input_json, run.input_key)
        output = await payloads.load(run.output_json, run.output_key)
        results = output if isinstance(output, list) else ([] if output is None else [output])
    return RunInfo(
        id=run.id,
        workspace_id=run.workspace_id,
        task_id=run.task_id,
        task_name=run.task_name,
        workflow_id=run.workflow_id,
        workflow_slug=run.workflow_slug,
        version_id=run.version_id,
        status=RunStatus(run.status),
        waiting=waiting,
        parent_id=run.parent_id,
        parent_attempt=run.parent_attempt,
        root_id=run.root_id,
        created_at=run.created_at,
        started_at=run.started_at,
        completed_at=run.completed_at,
        not_before=run.not_before,
        attempts=tuple(attempt_info(a) for a in attempts),
        input=input_value,
        results=results,
        error=run.error,
        stack_trace=run.stack_trace,
    )


async def get_run_row(
    session: AsyncSession, workspace_id: str, run_id: str, *, lock: bool = False
) -> TaskRun:
    run = await session.get(TaskRun, run_id, with_for_update=lock)
    if run is None or run.workspace_id != workspace_id:
        raise NotFound(f"task run {run_id} not found")
    return run


async def attempts_by_run(session: AsyncSession, run_ids: list[str]) -> dict[str, list[Attempt]]:
    grouped: dict[str, list[Attempt]] = defaultdict(list)
    if run_ids:
        rows = await session.scalars(
            select(Attempt).where(Attempt.run_id.in_(run_ids)).order_by(Attempt.number)
        )
        for row in rows:
            grouped[row.run_id].append(row)
    return grouped


def parse_task_ref(task_ref: str) -> tuple[str | None, str, str | None]:
    """`wf/task[:version]` → (workflow slug, task name, version id); a bare name has no slug."""
    ref = task_ref.strip()
    if not ref:
        raise InvalidRequest("task is required, as 'workflow/task'")
    version: str | None = None
    if ":" in ref:
        ref, version = ref.rsplit(":", 1)
    slug, _, name = ref.rpartition("/")
    if not name or (slug == "" and "/" in ref):
        raise InvalidRequest(f"task {task_ref!r} is not of the form 'workflow/task[:version]'")
    return (slug or None), name, version


async def resolve_task(session: AsyncSession, workspace_id: str, task_ref: str) -> TaskInfo:
    """A task by `wf/task[:version]`, by bare name when unambiguous, or by its `tsk-` id."""
    if task_ref.startswith("tsk-") and "/" not in task_ref:
        row = (
            await session.execute(
                select(Task, Workflow.slug)
                .join(Workflow, Workflow.id == Task.workflow_id)
                .where(Workflow.workspace_id == workspace_id, Task.id == task_ref)
            )
        ).first()
        if row is None:
            raise NotFound(f"task {task_ref!r} not found")
        return task_info(row[0], row[1])
    slug, name, version_id = parse_task_ref(task_ref)
    query = (
        select(Task, Workflow.slug)
        .join(Workflow, Workflow.id == Task.workflow_id)
        .where(Workflow.workspace_id == workspace_id, Task.name == name)
    )
    if slug is not None:
        query = query.where(Workflow.slug == slug)
    if version_id is not None:
        query = query.join(WorkflowVersion, WorkflowVersion.id == Task.version_id).where(
            WorkflowVersion.id == version_id,
            WorkflowVersion.status == VersionStatus.READY.value,
        )
    else:
        query = query.where(Task.version_id == Workflow.active_version_id)
    rows = (await session.execute(query)).all()
    if not rows:
        raise await _task_not_found(session, workspace_id, task_ref, version_id)
    if len(rows) > 1:
        raise InvalidRequest(f"task {name!r} is in several workflows: name it as 'workflow/task'")
    task, workflow_slug = rows[0]
    return task_info(task, workflow_slug)


async def _task_not_found(
    session: AsyncSession, workspace_id: str, task_ref: str, version_id: str | None
) -> NotFound:
    """NotFound naming the closest task slug of the active versions, when one is close."""
    rows = await session.execute(
        select(Workflow.slug, Task.name)
        .join(Workflow, Workflow.id == Task.workflow_id)
        .where(Workflow.workspace_id == workspace_id, Task.version_id == Workflow.active_version_id)
    )
    slugs = [f"{slug}/{name}" for slug, name in rows]
    wanted = task_ref.rsplit(":", 1)[0] if version_id else task_ref
    close = difflib.get_close_matches(wanted, slugs, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close and close[0] != wanted else ""
    return NotFound(f"task {task_ref!r} not found{hint}")


def runs_filter_query(workspace_id: str, run_filter: RunFilter) -> Select[TaskRun]:
    query = select(TaskRun).where(TaskRun.workspace_id == workspace_id)
    if run_filter.status:
        query = query.where(TaskRun.status.in_([str(s) for s in run_filter.status]))
    if run_filter.task_slugs:
        by_slug = []
        for task_slug in run_filter.task_slugs:
            slug, _, name = task_slug.rpartition("/")
            condition = TaskRun.task_name == name
            by_slug.append(and_(condition, TaskRun.workflow_slug == slug) if slug else condition)
        query = query.where(or_(*by_slug))
    for column, values in (
        (TaskRun.workflow_id, run_filter.workflow_ids),
        (TaskRun.version_id, run_filter.version_ids),
        (TaskRun.root_id, run_filter.root_ids),
    ):
        if values:
            query = query.where(column.in_(values))
    if run_filter.parent_id:
        query = query.where(TaskRun.parent_id == run_filter.parent_id)
    if run_filter.roots_only:
        query = query.where(TaskRun.parent_id.is_(None))
    if run_filter.children_only:
        query = query.where(TaskRun.parent_id.is_not(None))
    return query


def workflow_info(row: Workflow) -> WorkflowInfo:
    return WorkflowInfo(
        id=row.id,
        slug=row.slug,
        name=row.name,
        start_command=row.start_command,
        root_dir=row.root_dir,
        active_version_id=row.active_version_id,
        created_at=row.created_at,
        repo_url=row.repo_url,
        branch=row.branch,
        build_command=row.build_command or "",
    )


async def version_infos(
    session: AsyncSession,
    workspace_id: str,
    workflow_id: str | None,
    *,
    version_ids: list[str] | None = None,
) -> list[VersionInfo]:
    """Newest first; only `version_ids` when given (an empty list gives none)."""
    if version_ids is not None and not version_ids:
        return []
    query = (
        select(WorkflowVersion)
        .join(Workflow, Workflow.id == WorkflowVersion.workflow_id)
        .where(Workflow.workspace_id == workspace_id)
        .order_by(WorkflowVersion.id.desc())
    )
    if workflow_id:
        query = query.where(WorkflowVersion.workflow_id == workflow_id)
    if version_ids is not None:
        query = query.where(WorkflowVersion.id.in_(version_ids))
    versions = list(await session.scalars(query))
    names: dict[str, list[str]] = defaultdict(list)
    if versions:
        rows = await session.execute(
            select(Task.version_id, Task.name)
            .where(Task.version_id.in_([v.id for v in versions]))
            .order_by(Task.name)
        )
        for version_id, name in rows:
            names[version_id].append(name)
    return [
        VersionInfo(
            id=v.id,
            workflow_id=v.workflow_id,
            status=VersionStatus(v.status),
            created_at=v.created_at,
            message=v.message,
            task_names=tuple(names[v.id]),
        )
        for v in versions
    ]


async def usage(session: AsyncSession, workspace_id: str, max_concurrency: int) -> dict[str, Any]:
    day = func.substr(func.cast(Attempt.started_at, type_=TaskRun.task_name.type), 1, 10)
    per_task = await session.execute(
        select(
            TaskRun.workflow_slug,
            TaskRun.task_name,
            func.count(Attempt.id),
            func.coalesce(func.sum(Attempt.compute_seconds), 0.0),
            func.coalesce(func.sum(Attempt.cost_usd), 0.0),
        )
        .join(TaskRun, TaskRun.id == Attempt.run_id)
        .where(Attempt.workspace_id == workspace_id)
        .group_by(TaskRun.workflow_slug, TaskRun.task_name)
        .order_by(TaskRun.workflow_slug, TaskRun.task_name)
    )
    per_day = await session.execute(
        select(
            day,
            func.coalesce(func.sum(Attempt.compute_seconds), 0.0),
            func.coalesce(func.sum(Attempt.cost_usd), 0.0),
        )
        .where(Attempt.workspace_id == workspace_id, Attempt.started_at.is_not(None))
        .group_by(day)
        .order_by(day)
    )
    counts = dict(
        (
            await session.execute(
                select(TaskRun.status, func.count())
                .where(TaskRun.workspace_id == workspace_id, TaskRun.status.in_(NON_TERMINAL))
                .group_by(TaskRun.status)
            )
        ).all()
    )
    waiting = await session.scalar(
        select(func.count()).where(
            and_(
                Attempt.workspace_id == workspace_id,
                Attempt.state != AttemptState.ENDED.value,
                Attempt.waiting.is_(True),
            )
        )
    )
    running = counts.get(RunStatus.RUNNING.value, 0)
    return {
        "maxConcurrency": max_concurrency,
        "queue": {
            "pending": counts.get(RunStatus.PENDING.value, 0),
            "running": running - (waiting or 0),
            "waiting": waiting or 0,
        },
        "perTask": [
            {
                "taskSlug": f"{slug}/{name}",
                "attempts": n,
                "computeSeconds": round(float(seconds or 0.0), 3),
                "costUsd": round(float(cost or 0.0), 6),
            }
            for slug, name, n, seconds, cost in per_task
        ],
        "perDay": [
            {"day": d, "computeSeconds": round(float(s), 3), "costUsd": round(float(c), 6)}
            for d, s, c in per_day
        ],
    }
