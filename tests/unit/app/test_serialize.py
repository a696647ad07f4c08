"""Every JSON shape must parse with Render's official generated models and match our schemas."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from render.public_api.models.task_run_details import TaskRunDetails as RenderDetails
from render.public_api.models.task_run_status import TaskRunStatus
from render.public_api.models.task_run_with_cursor import TaskRunWithCursor as RenderRunCursor
from render.public_api.models.task_with_cursor import TaskWithCursor as RenderTaskCursor
from render.public_api.models.workflow_version_with_cursor import (
    WorkflowVersionWithCursor as RenderVersionCursor,
)
from render.public_api.models.workflow_with_cursor import WorkflowWithCursor as RenderWfCursor

from app.api import schemas, serialize
from app.api.responses import dumps
from core.domain import AttemptOutcome, RunInfo, RunStatus, VersionInfo, VersionStatus
from core.domain import WorkflowInfo as WfInfo
from tests.unit.app.app_fakes import T0, make_attempt, make_run, make_task


def wire(value: Any) -> Any:
    """What a client receives: our JSON text parsed back."""
    return json.loads(dumps(value))


RUNS: dict[str, RunInfo] = {
    "pending": make_run(status=RunStatus.PENDING),
    "running": make_run(
        status=RunStatus.RUNNING, attempts=(make_attempt(outcome=None),), waiting=True
    ),
    "succeeded": make_run(),
    "failed": make_run(
        status=RunStatus.FAILED,
        error="boom",
        stack_trace="Traceback …",
        attempts=(
            make_attempt(0, AttemptOutcome.ERROR, error="boom"),
            make_attempt(1, AttemptOutcome.TIMEOUT),
        ),
    ),
    "canceled": make_run(
        status=RunStatus.CANCELED, attempts=(make_attempt(outcome=AttemptOutcome.CANCELED),)
    ),
    "child": make_run(
        "trn-2", parent_id="trn-1", parent_attempt=0, root_id="trn-1", input={"a": 1}
    ),
    "unstarted-attempt": make_run(
        status=RunStatus.PENDING, attempts=(make_attempt(outcome=None, started_at=None),)
    ),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_details_parse_with_render_models(name: str) -> None:
    run = RUNS[name]
    body = wire(serialize.task_run_details(run))
    parsed = RenderDetails.from_dict(body)
    assert parsed.id == run.id
    assert parsed.status == TaskRunStatus(run.status.value)
    assert isinstance(parsed.results, list)
    schemas.TaskRunDetails.model_validate(body)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_list_items_parse_with_render_models(name: str) -> None:
    body = wire(serialize.with_cursor("taskRun", serialize.task_run(RUNS[name])))
    parsed = RenderRunCursor.from_dict(body)
    assert parsed.cursor == RUNS[name].id
    schemas.TaskRunWithCursor.model_validate(body)


def test_root_and_child_parent_fields() -> None:
    root = serialize.task_run(RUNS["succeeded"])
    assert root["parentTaskRunId"] == ""
    assert "parentTaskAttempt" not in root
    child = serialize.task_run(RUNS["child"])
    assert child["parentTaskRunId"] == "trn-1"
    assert child["parentTaskAttempt"] == 0
    assert child["rootTaskRunId"] == "trn-1"


def test_details_fields() -> None:
    failed = serialize.task_run_details(RUNS["failed"])
    assert failed["results"] == []
    assert failed["error"] == "boom"
    assert failed["stackTrace"] == "Traceback …"
    assert failed["retries"] == 1
    assert [a["outcome"] for a in failed["attempts"]] == ["error", "timeout"]
    assert failed["attempts"][0]["error"] == "boom"
    ok = serialize.task_run_details(RUNS["succeeded"])
    assert ok["results"] == [49]
    assert ok["attempts"][0]["results"] == [49]
    assert "error" not in ok
    pending = serialize.task_run_details(RUNS["pending"])
    assert "startedAt" not in pending and "completedAt" not in pending
    assert serialize.task_run_details(RUNS["unstarted-attempt"])["attempts"] == []
    assert serialize.task_run_details(RUNS["running"])["waiting"] is True


def test_timestamps_are_utc_with_z() -> None:
    assert serialize.timestamp(T0) == "2026-11-25T21:18:08.123456Z"
    other = datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    assert serialize.timestamp(other) == "2026-01-01T00:00:00.000000Z"
    naive = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    assert serialize.timestamp(naive) == "2026-01-01T00:00:00.000000Z"


def test_nan_and_infinity_survive() -> None:
    run = make_run(results=[math.nan, math.inf])
    text = dumps(serialize.task_run_details(run))
    assert "NaN" in text and "Infinity" in text
    assert RenderDetails.from_dict(json.loads(text)).results[1] == math.inf


def test_task_shapes() -> None:
    body = wire(serialize.with_cursor("task", serialize.task(make_task())))
    parsed = RenderTaskCursor.from_dict(body)
    assert parsed.task.name == "square"
    assert parsed.task.workflow_version_id == "wfv-1"
    schemas.TaskWithCursor.model_validate(body)
    task = body["task"]
    assert task["slug"] == "hello/square"
    assert task["options"] == {
        "retry": {"maxRetries": 3, "waitDurationMs": 1000, "factor": 2.0},
        "timeoutSeconds": 60,
        "plan": "starter",
    }
    assert task["parameters"] == [
        {"name": "a", "hasDefault": False, "type": "int"},
        {"name": "b", "hasDefault": True, "defaultValue": "2"},
    ]


def test_workflow_shapes() -> None:
    info = WfInfo("wf-1", "hello", "hello", "conveyor-worker main:app", "/src", None, T0)
    body = wire(serialize.with_cursor("workflow", serialize.workflow(info, "wsp-1")))
    assert RenderWfCursor.from_dict(body).workflow.owner_id == "wsp-1"
    schemas.WorkflowWithCursor.model_validate(body)
    version = VersionInfo("wfv-1", "wf-1", VersionStatus.REGISTRATION_FAILED, T0, "bad", ())
    body = wire(serialize.with_cursor("workflowVersion", serialize.workflow_version(version)))
    assert RenderVersionCursor.from_dict(body).workflow_version.status.value == (
        "registration_failed"
    )
    schemas.WorkflowVersionWithCursor.model_validate(body)
