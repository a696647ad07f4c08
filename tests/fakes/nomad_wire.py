"""The fake Nomad's wire rules: errors, blocking-query and boolean parameters, job validation.

Part of the fake in tests/fakes/nomad.py (see its docstring for what it checks).
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.responses import Response

PAYLOAD_LIMIT = 16 * 1024
_DURATION = re.compile(r"^(\d+)(ns|us|ms|s|m|h)$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_FIELDS = ("KillTimeout", "Interval", "Delay", "MaxDelay")


class NomadHTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def nomad_json(data: Any, index: int) -> Response:
    return Response(
        json.dumps(data), media_type="application/json", headers={"X-Nomad-Index": str(index)}
    )


def parse_wait(raw: str | None) -> float:
    if raw is None:
        return 300.0  # Nomad's default
    match = _DURATION.match(raw)
    if match is None:
        raise NomadHTTPError(400, f"Invalid wait time: {raw!r}")
    return min(int(match.group(1)) * _UNITS[match.group(2)], 600.0)


def go_bool(raw: str, name: str) -> bool:
    """Go's strconv.ParseBool, as Nomad parses boolean query parameters."""
    if raw in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if raw in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise NomadHTTPError(400, f"Failed to parse value of {name!r} ({raw}) as a bool")


def _check_capitalised(where: str, obj: dict[str, Any]) -> None:
    for key in obj:
        if not key[:1].isupper():
            raise NomadHTTPError(400, f"{where}: field {key!r} is not a Nomad API field name")
    for key in _DURATION_FIELDS:
        if key in obj and (not isinstance(obj[key], int) or isinstance(obj[key], bool)):
            raise NomadHTTPError(400, f"{where}.{key}: durations are integer nanoseconds")


def validate_job(job: Any) -> None:
    if not isinstance(job, dict):
        raise NomadHTTPError(400, "Job must be an object")
    _check_capitalised("Job", job)
    if not isinstance(job.get("ID"), str) or not job["ID"]:
        raise NomadHTTPError(400, "1 error occurred:\n\t* Missing job ID")
    if job.get("Type") not in ("batch", "service", "system", "sysbatch"):
        raise NomadHTTPError(400, f"Invalid job type: {job.get('Type')!r}")
    groups = job.get("TaskGroups")
    if not isinstance(groups, list) or not groups:
        raise NomadHTTPError(400, "Missing job task groups")
    for group in groups:
        _validate_group(group)


def _validate_group(group: Any) -> None:
    if not isinstance(group, dict):
        raise NomadHTTPError(400, "TaskGroups must hold objects")
    _check_capitalised("TaskGroup", group)
    for policy in ("RestartPolicy", "ReschedulePolicy"):
        if not isinstance(group.get(policy), dict):
            raise NomadHTTPError(400, f"this fake wants an explicit {policy}")
        _check_capitalised(policy, group[policy])
    if group["RestartPolicy"].get("Mode") not in ("fail", "delay"):
        raise NomadHTTPError(400, "RestartPolicy.Mode must be fail or delay")
    tasks = group.get("Tasks")
    if not isinstance(tasks, list) or not tasks:
        raise NomadHTTPError(400, "Missing tasks for task group")
    for task in tasks:
        if not isinstance(task, dict):
            raise NomadHTTPError(400, "Tasks must hold objects")
        _check_capitalised("Task", task)
        if task.get("Driver") != "docker":
            raise NomadHTTPError(400, "this fake runs docker tasks only")
        config = task.get("Config") or {}
        if not isinstance(config.get("image"), str) or not isinstance(config.get("command"), str):
            raise NomadHTTPError(
                400, f"task {task.get('Name')}: docker config needs image, command"
            )
        lifecycle = task.get("Lifecycle")
        if lifecycle and not (lifecycle.get("Hook") == "prestart" and lifecycle.get("Sidecar")):
            raise NomadHTTPError(400, "this fake runs prestart sidecars only")
