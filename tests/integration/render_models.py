"""Holding a parsed answer against Render's own generated models, field by field.

Render's client parses answers with attrs classes generated from Render's OpenAPI document; they
check almost nothing themselves (a string where an int belongs passes, and unknown keys land in
`additional_properties`). `problems_of` checks what they do not: every field a model names is
present (unless listed in `ABSENT` with the reason Conveyor leaves it out) and holds a value of the
declared type, and `additional_properties` holds only Conveyor's documented additions (`EXTRAS`).
"""

from __future__ import annotations

import datetime
import enum
import importlib
import sys
import types
import typing
from functools import cache
from typing import Any

import attrs
from render.public_api.types import Unset as RenderUnset
from render_sdk.public_api.types import Unset as SdkUnset

UNSETS = (RenderUnset, SdkUnset)

# Keys Conveyor adds to Render's shapes (docs/render-compatibility.md lists them).
EXTRAS: dict[str, set[str]] = {
    "TaskRun": {"taskSlug", "workflowId", "workflowVersionId", "createdAt"},
    "TaskRunDetails": {
        "taskSlug",
        "workflowId",
        "workflowVersionId",
        "createdAt",
        "waiting",
        "waitingReason",
        "stackTrace",
    },
    "TaskAttempt": {"outcome"},
    "TaskAttemptDetails": {
        "outcome",
        "stackTrace",
        "computeSeconds",
        "costUsd",
        "exitCode",
        "waitingReason",
    },
    "Task": {"slug", "options", "parameters", "description", "language"},
    "Workflow": {"rootDir", "activeVersionId", "branch", "envVarKeys"},
    "WorkflowVersion": {"tasks", "message"},
}
# Fields of Render's models Conveyor leaves out, and why.
ABSENT: dict[tuple[str, str], str] = {
    ("TaskRun", "parent_task_attempt"): "a root run has no parent attempt (Render omits it too)",
    ("TaskRunDetails", "parent_task_attempt"): "a root run has no parent attempt",
    ("TaskRun", "started_at"): "a pending run has not started",
    ("TaskRunDetails", "started_at"): "a pending run has not started",
    ("TaskRun", "completed_at"): "an unfinished run has not completed",
    ("TaskRunDetails", "completed_at"): "an unfinished run has not completed",
    ("TaskRunDetails", "error"): "only a failed run has an error",
    ("TaskAttempt", "completed_at"): "a running attempt has not completed",
    ("TaskAttemptDetails", "completed_at"): "a running attempt has not completed",
    ("TaskAttemptDetails", "error"): "only a failed attempt has an error",
    ("Workflow", "environment_id"): "Conveyor has no environments",
    ("Error", "id"): "Conveyor's errors carry a message and a code, no id",
    ("FlowRun", "started_at"): "a pending flow run has not started",
    ("FlowRun", "completed_at"): "an unfinished flow run has not completed",
    ("FlowRunDetails", "started_at"): "a pending flow run has not started",
    ("FlowRunDetails", "completed_at"): "an unfinished flow run has not completed",
    ("FlowRunDetails", "error"): "only a failed flow run has an error",
    ("FlowRunDetails", "error_details"): "only a flow run failed by a flow rule has details",
    ("FlowRunAttempt", "completed_at"): "a running attempt has not completed",
    ("FlowRunAttempt", "error"): "only a failed attempt has an error",
    ("FlowRunErrorDetails", "sub_key"): "Conveyor's steps have no sub-keys",
    ("FlowRunErrorDetails", "limit"): "only a limit's error has one",
    ("FlowRunErrorDetails", "value"): "only a limit's error has one",
    ("FlowRunStep", "completed_at"): "a running step has not completed",
    ("FlowRunStep", "wake_at"): "only a sleep has a wake time",
    ("FlowRunStep", "child_task_run_id"): "only a detached step has a child run",
    ("FlowRunStepDetails", "completed_at"): "a running step has not completed",
    ("FlowRunStepDetails", "wake_at"): "only a sleep has a wake time",
    ("FlowRunStepDetails", "child_task_run_id"): "only a detached step has a child run",
    ("FlowRunStepDetails", "result"): "only a succeeded step has a result",
    ("FlowRunStepDetails", "error"): "only a failed step (or try) has an error",
}
# Open-ended objects: their keys are the user's data.
FREE_FORM = {"TaskDataType1", "FlowInputType1"}


@cache
def _hints(cls: type) -> dict[str, Any]:
    # The models name each other in strings: resolve them in their own package (render's or
    # render_sdk's, whose models are generated separately).
    module = vars(sys.modules[cls.__module__])
    package = importlib.import_module(cls.__module__.rsplit(".", 1)[0])
    return typing.get_type_hints(cls, globalns=module, localns=vars(package))


def problems_of(value: Any, path: str = "answer") -> list[str]:
    """Every way ``value`` (a parsed model, or a list of them) breaks Render's models."""
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in problems_of(item, f"{path}[{i}]")]
    if not attrs.has(type(value)):
        return [f"{path}: {type(value).__name__} is not one of Render's models"]
    name = type(value).__name__
    problems: list[str] = []
    for field in attrs.fields(type(value)):
        if field.name == "additional_properties":
            continue
        item = getattr(value, field.name)
        where = f"{path}.{field.name}"
        if isinstance(item, UNSETS):
            if (name, field.name) not in ABSENT:
                problems.append(f"{where}: missing")
            continue
        model: type = type(value)
        problems += _conforms(item, _hints(model)[field.name], where)
    if name not in FREE_FORM:
        extra = set(value.additional_properties) - EXTRAS.get(name, set())
        if extra:
            problems.append(f"{path}: unexpected keys {sorted(extra)}")
    return problems


def _conforms(value: Any, hint: Any, path: str) -> list[str]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return []
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in args if a not in UNSETS]
        if len(options) == 1:
            return _conforms(value, options[0], path)
        if any(not _conforms(value, option, path) for option in options):
            return []
        return [f"{path}: {value!r} is none of {options}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [p for i, v in enumerate(value) for p in _conforms(v, args[0], f"{path}[{i}]")]
    if attrs.has(hint):
        return problems_of(value, path) if isinstance(value, hint) else [f"{path}: not {hint}"]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return (
            [] if isinstance(value, hint) else [f"{path}: expected {hint.__name__}, got {value!r}"]
        )
    if hint is datetime.datetime:
        aware = isinstance(value, datetime.datetime) and value.tzinfo is not None
        return [] if aware else [f"{path}: {value!r} is not a timezone-aware datetime"]
    if hint is int and isinstance(value, bool):
        return [f"{path}: expected int, got {value!r}"]
    if isinstance(hint, type):
        return (
            [] if isinstance(value, hint) else [f"{path}: expected {hint.__name__}, got {value!r}"]
        )
    return [f"{path}: cannot check against {hint!r}"]
