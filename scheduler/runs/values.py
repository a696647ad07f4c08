"""The values transitions write: new rows of runs and attempts, and the rules behind them."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from conveyor._input_check import input_problem
from core.blobs.base import attempt_log_key
from core.domain import AttemptOutcome, AttemptState, RunInfo, RunStatus, TaskInfo
from core.ids import new_id
from core.settings import Settings
from scheduler.runs.admission import Admitted
from scheduler.runs.rows import AnyRow, run_info

# outcomes the worker reports itself, after which it exits: its slot is free at once
SELF_REPORTED = frozenset({AttemptOutcome.OK, AttemptOutcome.ERROR})


def run_input_problem(task: TaskInfo, payload: Any) -> str | None:
    """Why `payload` cannot start `task`, judged before a run exists; None when it can.

    Render's TypeScript SDK spreads the input into the function's arguments (`f(ctx, ...input)`),
    so an object cannot reach a TypeScript task: every attempt would fail with a TypeError.
    """
    if task.language == "typescript" and isinstance(payload, dict):
        return (
            "a TypeScript task takes its arguments by position: send a JSON array of them "
            "in order, not an object"
        )
    return input_problem(task.parameters, payload)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _run_values(run_id: str, now: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "id": run_id,
        "status": RunStatus.PENDING.value,
        "awaited": False,
        "attempt_count": 0,
        "lost_count": 0,
        "paused_count": 0,
        "depth": 0,
        "child_count": 0,
        "created_at": now,
        **fields,
    }


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
    return _run_values(
        run_id,
        now,
        workspace_id=workspace_id,
        task_id=task.id,
        task_name=task.name,
        workflow_id=task.workflow_id,
        workflow_slug=task.workflow_slug,
        version_id=task.version_id,
        parent_id=None,
        parent_attempt=None,
        root_id=run_id,
        is_root=True,
        input_json=input_json,
        input_key=input_key,
        idempotency_scope=idempotency[0] if idempotency else None,
        idempotency_key=idempotency[1] if idempotency else None,
    )


def child_run_values(
    run_id: str,
    parent: AnyRow,
    task: AnyRow,
    input_json: str | None,
    input_key: str | None,
    idempotency_key: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The row of a new pending child of `parent` (its attempt's run) running `task`."""
    return _run_values(
        run_id,
        now,
        workspace_id=parent.workspace_id,
        task_id=task.id,
        task_name=task.name,
        workflow_id=parent.workflow_id,
        workflow_slug=parent.workflow_slug,
        version_id=parent.version_id,
        parent_id=parent.run_id,
        parent_attempt=parent.number,
        root_id=parent.root_id,
        is_root=False,
        depth=parent.depth + 1,
        input_json=input_json,
        input_key=input_key,
        idempotency_scope=parent.run_id if idempotency_key else None,
        idempotency_key=idempotency_key,
    )


def attempt_values(
    settings: Settings, run: AnyRow, options: Any, scheduler_id: str, now: datetime
) -> tuple[dict[str, Any], Admitted]:
    """The row of the next attempt of a pending `run`, and what starting it needs."""
    plan = settings.plan(options.plan).name
    number = run.attempt_count
    values = {
        "id": new_id("att"),
        "run_id": run.id,
        "workspace_id": run.workspace_id,
        "number": number,
        "state": AttemptState.STARTING.value,
        "waiting": False,
        "executor": settings.executor.kind,
        "scheduler_id": scheduler_id,
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
        timeout_seconds=options.timeout_seconds or settings.limits.default_timeout_seconds,
        log_key=values["log_key"],
        workspace_id=run.workspace_id,
        root_id=run.root_id,
        parent_id=run.parent_id,
        input_json=run.input_json,
        input_key=run.input_key,
        started_at=now,
    )
    return values, admitted


def error_text(error: str | None, stack_trace: str | None, memory_mb: int) -> str:
    """What a failed attempt says went wrong: never empty (Render's client takes an empty error
    for no error). An exception with no message is named by its trace's last line."""
    lines = (stack_trace or "").strip().splitlines()
    said = error or (lines[-1].strip() if lines else "")
    if said.rstrip(":") == "MemoryError":  # a MemoryError says nothing of its own
        return f"MemoryError: out of memory (the plan's limit is {memory_mb} MB)"
    return said or "the task failed without saying why"


def exit_outcome(exit_code: int | None, out_of_memory: bool, memory_mb: int) -> tuple[str, str]:
    """The outcome of an instance that ended without reporting one."""
    if out_of_memory:
        return (
            AttemptOutcome.OUT_OF_MEMORY.value,
            f"out of memory (the plan's limit is {memory_mb} MB): the instance was killed",
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


def new_run_info(values: dict[str, Any], admitted: Admitted | None, input: Any) -> RunInfo:
    """The run just created, as it committed (no read back)."""
    row = SimpleNamespace(
        completed_at=None, not_before=None, started_at=None, error=None, stack_trace=None, **values
    )
    attempt_rows: list[Any] = []
    if admitted is not None:
        now = utcnow()
        row.status = RunStatus.RUNNING.value
        row.started_at = now
        attempt_rows.append(
            SimpleNamespace(
                number=0,
                state=AttemptState.STARTING.value,
                outcome=None,
                enqueued_at=row.created_at,
                started_at=now,
                ended_at=None,
                waiting=False,
                error=None,
                stack_trace=None,
                compute_seconds=None,
                cost_usd=None,
                exit_code=None,
                waiting_reason=None,
            )
        )
    return run_info(row, attempt_rows, input=input, results=[])
