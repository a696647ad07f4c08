"""Domain values → the camelCase JSON of docs/rest-api.md (Render's public API shapes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.domain import (
    AttemptInfo,
    AttemptOutcome,
    RunInfo,
    RunStatus,
    TaskInfo,
    TaskOptions,
    TaskParameter,
    VersionInfo,
    WorkflowInfo,
)

Obj = dict[str, Any]


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds and `Z`; a naive value is taken as UTC already."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _put_time(out: Obj, key: str, value: datetime | None) -> None:
    if value is not None:
        out[key] = timestamp(value)


def _put(out: Obj, key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def attempt(run_id: str, info: AttemptInfo) -> Obj:
    out: Obj = {
        "attempt": info.number,
        "status": info.status.value,
        "taskRunId": run_id,
        "enqueuedAt": timestamp(info.enqueued_at),
    }
    _put_time(out, "startedAt", info.started_at)
    _put_time(out, "completedAt", info.ended_at)
    _put(out, "outcome", info.outcome.value if info.outcome is not None else None)
    return out


def attempt_details(run: RunInfo, info: AttemptInfo) -> Obj:
    out = attempt(run.id, info)
    _put(out, "error", info.error)
    _put(out, "stackTrace", info.stack_trace)
    ok = info.outcome is AttemptOutcome.OK
    out["results"] = list(run.results or []) if ok else []
    _put(out, "computeSeconds", info.compute_seconds)
    _put(out, "costUsd", info.cost_usd)
    _put(out, "exitCode", info.exit_code)
    _put(out, "waitingReason", info.waiting_reason)
    return out


def _started(run: RunInfo) -> list[AttemptInfo]:
    # Render's models require `startedAt` on every attempt, so unstarted ones stay out.
    return [a for a in run.attempts if a.started_at is not None]


def _waiting_reason(run: RunInfo) -> str | None:
    """Why the run's current attempt has not started running (e.g. no cluster capacity)."""
    if run.status is not RunStatus.RUNNING or not run.attempts:
        return None
    return max(run.attempts, key=lambda a: a.number).waiting_reason


def task_run(run: RunInfo) -> Obj:
    out: Obj = {
        "id": run.id,
        "taskId": run.task_id,
        "taskSlug": run.task_slug,
        "workflowId": run.workflow_id,
        "workflowVersionId": run.version_id,
        "status": run.status.value,
        "parentTaskRunId": run.parent_id or "",
        "rootTaskRunId": run.root_id,
        "retries": run.retries,
        "createdAt": timestamp(run.created_at),
    }
    if run.parent_id is not None:
        _put(out, "parentTaskAttempt", run.parent_attempt)
    _put_time(out, "startedAt", run.started_at)
    _put_time(out, "completedAt", run.completed_at)
    out["attempts"] = [attempt(run.id, a) for a in _started(run)]
    return out


def task_run_details(run: RunInfo) -> Obj:
    out = task_run(run)
    out["attempts"] = [attempt_details(run, a) for a in _started(run)]
    out["results"] = list(run.results or [])
    out["input"] = run.input if isinstance(run.input, list | dict) else []
    out["waiting"] = run.waiting
    _put(out, "waitingReason", _waiting_reason(run))
    _put(out, "error", run.error)
    _put(out, "stackTrace", run.stack_trace)
    return out


def task_options(options: TaskOptions) -> Obj:
    out: Obj = {}
    if options.retry is not None:
        out["retry"] = {
            "maxRetries": options.retry.max_retries,
            "waitDurationMs": options.retry.wait_duration_ms,
            "factor": options.retry.factor,
        }
    _put(out, "timeoutSeconds", options.timeout_seconds)
    _put(out, "plan", options.plan)
    _put(out, "schedule", options.schedule)
    _put(out, "concurrency", options.concurrency)
    return out


def task_parameter(param: TaskParameter) -> Obj:
    out: Obj = {"name": param.name, "hasDefault": param.has_default}
    _put(out, "type", param.type)
    _put(out, "defaultValue", param.default_value)
    _put(out, "schema", param.schema)
    return out


def task(info: TaskInfo) -> Obj:
    out: Obj = {
        "id": info.id,
        "name": info.name,
        "slug": info.slug,
        "createdAt": timestamp(info.created_at),
        "workflowId": info.workflow_id,
        "workflowVersionId": info.version_id,
        "options": task_options(info.options),
        "parameters": [task_parameter(p) for p in info.parameters],
    }
    _put(out, "description", info.description)
    _put(out, "language", info.language)
    return out


def workflow(info: WorkflowInfo, workspace_id: str) -> Obj:
    created = timestamp(info.created_at)
    out: Obj = {
        "id": info.id,
        "name": info.name,
        "slug": info.slug,
        "ownerId": workspace_id,
        "createdAt": created,
        "updatedAt": created,
        "runCommand": info.start_command,
        "rootDir": info.root_dir,
        "buildConfig": {
            "buildCommand": info.build_command,
            "repo": info.repo_url or "",
            "runtime": info.runtime,
            "branch": info.branch or "",
            "rootDir": info.root_dir,
        },
        "branch": info.branch or "",
        "autoDeployTrigger": auto_deploy_trigger(info.repo_url),
        # Render's generated models require a region; Conveyor runs where it is deployed.
        "region": "oregon",
    }
    _put(out, "activeVersionId", info.active_version_id)
    return out


def auto_deploy_trigger(repo_url: str | None) -> str:
    """A workflow built from a repository deploys on every push to its branch (Render's
    "commit"); a folder registered by `conveyor dev` re-registers on change, not on a push."""
    return "commit" if repo_url else "off"


def workflow_version(info: VersionInfo) -> Obj:
    out: Obj = {
        "id": info.id,
        "workflowId": info.workflow_id,
        "name": info.id,
        "createdAt": timestamp(info.created_at),
        "status": info.status.value,
        "tasks": list(info.task_names),
    }
    _put(out, "message", info.message)
    return out


def with_cursor(key: str, item: Obj) -> Obj:
    return {key: item, "cursor": item["id"]}
