"""Flow runs, their steps and flows in Render's shapes (`render.public_api.models.flow*`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.api.serialize import timestamp
from core.domain import AttemptInfo, AttemptOutcome, TaskInfo
from scheduler.flows.service import FlowRunView, flow_id, flow_run_id
from scheduler.flows.tables import StepDetails, StepInfo, StepStatus

Obj = dict[str, Any]


def _put(out: Obj, key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def flow(info: TaskInfo) -> Obj:
    return {
        "id": flow_id(info.id),
        "name": info.name,
        "createdAt": timestamp(info.created_at),
        "workflowId": info.workflow_id,
        "workflowVersionId": info.version_id,
    }


def flow_run(view: FlowRunView) -> Obj:
    run = view.run
    out: Obj = {"id": flow_run_id(run.id), "flowId": flow_id(run.task_id), "status": view.status}
    _put(out, "startedAt", run.started_at and timestamp(run.started_at))
    _put(out, "completedAt", run.completed_at and timestamp(run.completed_at))
    return out


def flow_run_details(view: FlowRunView) -> Obj:
    run = view.run
    out = flow_run(view)
    out |= {
        "input": run.input if run.input is not None else [],
        "results": run.results or [],
        "attempts": [_attempt(a) for a in run.attempts],
    }
    _put(out, "error", run.error)
    _put(out, "errorDetails", view.error_details)
    return out


def _attempt(attempt: AttemptInfo) -> Obj:
    status = "paused" if attempt.outcome is AttemptOutcome.PAUSED else attempt.status.value
    out: Obj = {"attempt": attempt.number, "status": status}
    _put(out, "startedAt", attempt.started_at and timestamp(attempt.started_at))
    _put(out, "completedAt", attempt.ended_at and timestamp(attempt.ended_at))
    if attempt.outcome not in (None, AttemptOutcome.OK, AttemptOutcome.PAUSED):
        _put(out, "error", attempt.error)
    return out


def step(info: StepInfo) -> Obj:
    out: Obj = {
        "seq": info.seq,
        "stepKey": info.step_key,
        "type": info.type.value,
        "status": info.status.value,
        "startedAt": timestamp(info.started_at),
        "flowRunAttempt": info.flow_attempt,
        "name": info.name,
    }
    _put(out, "completedAt", info.completed_at and timestamp(info.completed_at))
    _put(out, "wakeAt", info.wake_at and timestamp(info.wake_at))
    _put(out, "childTaskRunId", info.child_run_id)
    return out


def step_details(details: StepDetails) -> Obj:
    info = details.info
    out = step(info)
    out["attempts"] = [
        {
            "attempt": t["attempt"],
            "flowRunAttempt": t["flowRunAttempt"],
            "startedAt": timestamp(datetime.fromisoformat(t["startedAt"])),
            "completedAt": timestamp(datetime.fromisoformat(t["completedAt"])),
            "error": t["error"],
        }
        for t in info.attempts
    ]
    out["input"] = details.input
    if info.status is StepStatus.SUCCEEDED:
        out["result"] = details.result
    _put(out, "error", info.error)
    return out
