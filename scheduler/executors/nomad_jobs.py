"""The Nomad job a workflow version runs as: a parameterized batch job, one dispatch per attempt.

JSON in Nomad's API form (capitalised fields, durations in nanoseconds). One job per version and
plan, since a task group's resources are fixed when the job is registered.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from core.settings import NomadSettings, Plan

SOCKET_NAME = "conveyor.sock"  # the sidecar serves ${NOMAD_ALLOC_DIR}/conveyor.sock
PAYLOAD_FILE = "relay.json"  # written by Nomad into the sidecar's local/ dir
WORKER_TASK = "worker"
AGENT_TASK = "agent"
GROUP = "attempt"
META_KEYS = ("attempt_id", "run_id", "attempt", "mode")
MAX_PAYLOAD_BYTES = 16 * 1024  # Nomad refuses larger dispatch payloads
_SECOND_NS = 1_000_000_000
# per-attempt values the scheduler puts in the env come from the dispatch's meta instead
_FROM_META = {
    "CONVEYOR_TASK_RUN_ID": "${NOMAD_META_run_id}",
    "CONVEYOR_ATTEMPT": "${NOMAD_META_attempt}",
}


# Nomad starts the main task once the sidecar has *started*, not once it serves: the worker waits
# (≤ 30 s) for the socket, rather than spending the SDK's doubling retry delays on it.
_AFTER_SOCKET = (
    "-c",
    'i=0; while [ ! -S "$RENDER_SDK_SOCKET_PATH" ] && [ "$i" -lt 600 ]; do sleep 0.05; '
    'i=$((i+1)); done; exec "$@"',
    "conveyor-wait-for-agent",
)


def job_id_for(prefix: str, version_id: str, plan: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{prefix}-{version_id}-{plan}")


@dataclass(frozen=True)
class JobShape:
    """What a version's job is made of; equal shapes give equal jobs."""

    job_id: str
    version_id: str
    image: str
    start_command: str
    plan: Plan
    env: tuple[tuple[str, str], ...]
    kill_grace_seconds: float


def job_spec(shape: JobShape, settings: NomadSettings) -> dict[str, Any]:
    argv = shlex.split(shape.start_command)
    if not argv:
        raise ValueError(f"version {shape.version_id}: empty start command")
    job: dict[str, Any] = {
        "ID": shape.job_id,
        "Name": shape.job_id,
        "Type": "batch",
        "Namespace": settings.namespace,
        "Datacenters": list(settings.datacenters),
        "ParameterizedJob": {"Payload": "required", "MetaRequired": list(META_KEYS)},
        "Meta": {"conveyor_version_id": shape.version_id, "conveyor_plan": shape.plan.name},
        "TaskGroups": [_group(shape, argv, settings)],
    }
    if settings.region:
        job["Region"] = settings.region
    return {"Job": job}


def _hardened(config: dict[str, Any], settings: NomadSettings) -> dict[str, Any]:
    """A docker task config with no capabilities, no privilege escalation and a read-only root."""
    return {
        **config,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": settings.pids_limit,
        "readonly_rootfs": True,
        "mount": [
            {
                "type": "tmpfs",
                "target": "/tmp",
                "readonly": False,
                "tmpfs_options": [{"size": settings.tmp_size_mb * 1024 * 1024}],
            }
        ],
    }


def _group(shape: JobShape, argv: list[str], settings: NomadSettings) -> dict[str, Any]:
    kill_ns = int(shape.kill_grace_seconds * _SECOND_NS)
    # the task's uid has no home in the image, and its root is read-only: /tmp is writable
    env = {"HOME": "/tmp", **dict(shape.env), **_FROM_META}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "RENDER_SDK_MODE": "${NOMAD_META_mode}",
            "RENDER_SDK_SOCKET_PATH": "${NOMAD_ALLOC_DIR}/" + SOCKET_NAME,
        }
    )
    # `entrypoint`, not `command`: a `command` runs after the image's ENTRYPOINT, as its argument
    worker = {
        "Name": WORKER_TASK,
        "Driver": "docker",
        "User": settings.task_user,
        "Config": _hardened(
            {"image": shape.image, "entrypoint": ["/bin/sh"], "args": [*_AFTER_SOCKET, *argv]},
            settings,
        ),
        "Env": env,
        "Resources": {
            "CPU": max(int(shape.plan.cpu * settings.cpu_mhz_per_core), 1),
            "MemoryMB": shape.plan.memory_mb,
        },
        "KillTimeout": kill_ns,
    }
    agent = {
        "Name": AGENT_TASK,
        "Driver": "docker",
        "User": settings.task_user,
        "Config": _hardened(
            {"image": agent_image(settings), "entrypoint": ["conveyor"], "args": ["agent"]},
            settings,
        ),
        "Lifecycle": {"Hook": "prestart", "Sidecar": True},
        "DispatchPayload": {"File": PAYLOAD_FILE},
        "Env": {"PYTHONUNBUFFERED": "1"},
        "Resources": {"CPU": settings.agent_cpu_mhz, "MemoryMB": settings.agent_memory_mb},
        # it must outlive the worker's last callback, so it stops after the worker
        "KillTimeout": kill_ns,
    }
    return {
        "Name": GROUP,
        "Count": 1,
        # retries belong to the scheduler, so each attempt is metered and logged on its own
        "RestartPolicy": {
            "Attempts": 0,
            "Mode": "fail",
            "Interval": 86400 * _SECOND_NS,
            "Delay": 15 * _SECOND_NS,
        },
        "ReschedulePolicy": {
            "Attempts": 0,
            "Unlimited": False,
            "Interval": 0,
            "Delay": 0,
            "DelayFunction": "constant",
            "MaxDelay": 0,
        },
        "Tasks": [agent, worker],
    }


def agent_image(settings: NomadSettings) -> str:
    """The sidecar's image: set, and not a tag Nomad would pull again on every dispatch."""
    image = settings.agent_image
    if not image:
        raise ValueError(
            "set CONVEYOR_NOMAD__AGENT_IMAGE to the control-plane image in a registry the Nomad "
            "clients pull from, pinned by tag or digest (e.g. registry/conveyor:1.4.0)"
        )
    if floating_tag(image):
        raise ValueError(
            f"CONVEYOR_NOMAD__AGENT_IMAGE={image}: Nomad's docker driver pulls a `:latest` (or "
            "untagged) image on every start, so a locally built one fails; push it to a registry "
            "and pin a tag or digest"
        )
    return image


def floating_tag(image: str) -> bool:
    """Whether Nomad's docker driver pulls `image` on every start: `:latest` or no tag at all."""
    if "@" in image:
        return False
    name = image.rsplit("/", 1)[-1]
    return ":" not in name or name.endswith(":latest")


def dispatch_body(
    *, attempt_id: str, run_id: str, attempt: int, mode: str, token: str, control_plane_url: str
) -> dict[str, Any]:
    payload = json.dumps(
        {"attempt_id": attempt_id, "token": token, "control_plane_url": control_plane_url}
    ).encode()
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"attempt {attempt_id}: dispatch payload over {MAX_PAYLOAD_BYTES} bytes")
    meta = {
        "attempt_id": attempt_id,
        "run_id": run_id or "-",
        "attempt": str(attempt),
        "mode": mode,
    }
    return {"Payload": base64.b64encode(payload).decode(), "Meta": meta}
