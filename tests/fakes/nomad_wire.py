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
        _validate_docker_config(str(task.get("Name")), task.get("Config") or {})
        lifecycle = task.get("Lifecycle")
        if lifecycle and not (lifecycle.get("Hook") == "prestart" and lifecycle.get("Sidecar")):
            raise NomadHTTPError(400, "this fake runs prestart sidecars only")


# the docker driver config fields this fake knows, with their JSON types (docker/config.go)
_DOCKER_FIELDS: dict[str, type | tuple[type, ...]] = {
    "image": str,
    "command": str,
    "entrypoint": list,
    "args": list,
    "cap_drop": list,
    "security_opt": list,
    "pids_limit": int,
    "readonly_rootfs": bool,
    "mount": list,
    "force_pull": bool,
}
_MOUNT_FIELDS = {"type", "target", "source", "readonly", "tmpfs_options", "bind_options"}


def _validate_docker_config(task: str, config: dict[str, Any]) -> None:
    """As the driver's HCL spec decodes it: known fields of the right type, an image."""
    for key, value in config.items():
        kind = _DOCKER_FIELDS.get(key)
        if kind is None:
            raise NomadHTTPError(
                400,
                f'Task {task}: Invalid driver config: An argument named "{key}" is not expected',
            )
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise NomadHTTPError(400, f"Task {task}: Invalid driver config: {key} is not {kind}")
    if not isinstance(config.get("image"), str) or not config["image"]:
        raise NomadHTTPError(400, f"Task {task}: Invalid driver config: image is required")
    for key in ("entrypoint", "args", "cap_drop", "security_opt"):
        if not all(isinstance(item, str) for item in config.get(key) or []):
            raise NomadHTTPError(400, f"Task {task}: Invalid driver config: {key} holds strings")
    for mount in config.get("mount") or []:
        if not isinstance(mount, dict) or set(mount) - _MOUNT_FIELDS:
            raise NomadHTTPError(400, f"Task {task}: Invalid driver config: mount {mount!r}")
        if mount.get("type") not in ("bind", "volume", "tmpfs") or not mount.get("target"):
            raise NomadHTTPError(400, f"Task {task}: mount needs a type and a target")
