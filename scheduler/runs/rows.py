"""Runs, attempts and tasks as Core tables, and their rows as domain values."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, TypeAlias, cast

from sqlalchemy import Row, Table

from core.db.models import Attempt, AttemptEvent, Task, TaskRun, Workflow, Workspace
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
    WorkflowInfo,
)
from core.events import RunChanged

# a row of any select (Row is generic over its columns' types)
AnyRow: TypeAlias = Row[*tuple[Any, ...]]

runs = cast(Table, TaskRun.__table__)
attempts = cast(Table, Attempt.__table__)
attempt_events = cast(Table, AttemptEvent.__table__)
tasks = cast(Table, Task.__table__)
workflows = cast(Table, Workflow.__table__)
workspaces = cast(Table, Workspace.__table__)

NON_TERMINAL = (RunStatus.PENDING.value, RunStatus.RUNNING.value)
# attempts that hold a slot unless they wait on children
LIVE_STATES = (AttemptState.STARTING.value, AttemptState.RUNNING.value)


def changed(run: Any, status: str) -> RunChanged:
    """The bus's news of `run` (a row or anything with its id, root_id and parent_id)."""
    return RunChanged(run.id, run.root_id, run.parent_id, status, RunStatus(status).terminal)


@functools.lru_cache(maxsize=4096)
def options_from_json(text: str) -> TaskOptions:
    """A task's options from their stored JSON (tasks never change: cached by text)."""
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


def attempt_info(row: Any) -> AttemptInfo:
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


def run_info(
    run: Any,
    attempt_rows: Sequence[Any],
    *,
    input: Any = None,
    results: list[Any] | None = None,
) -> RunInfo:
    """The run as a value; without `input` and `results` (listings) they are left out."""
    current = attempt_rows[-1] if attempt_rows else None
    waiting = bool(current and current.waiting and current.state != AttemptState.ENDED.value)
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
        attempts=tuple(attempt_info(a) for a in attempt_rows),
        input=input,
        results=results,
        error=run.error,
        stack_trace=run.stack_trace,
    )


def results_of(output: Any) -> list[Any] | None:
    """A run's results: always a list once it has an output (Render's rule)."""
    if output is None:
        return None
    return output if isinstance(output, list) else [output]


def task_info(row: AnyRow | Task, workflow_slug: str) -> TaskInfo:
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
        language=row.language,
        kind=row.kind,
    )


def workflow_info(row: Any) -> WorkflowInfo:
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
        runtime=row.runtime or "python",
    )
