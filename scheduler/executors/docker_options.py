"""What an attempt's container may do: `docker run` options, and the socket folder it is given.

A run is untrusted code, so its container is locked down beyond Docker's defaults:

- an unprivileged user (`DockerSettings.user`, else nobody's 65534:65534 when the control plane is
  root), to whom the attempt's socket folder and socket are handed;
- every capability dropped and `no-new-privileges`: no setuid binary gives root back;
- a pids limit: a fork bomb stops there, not at the host's;
- a read-only root filesystem; `/tmp` is a size-limited tmpfs and HOME and TMPDIR point to it;
- the plan's CPU and memory (swap included), and the operator's extra mounts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import DockerSettings
from scheduler.executors.base import AttemptSpec
from scheduler.executors.environment import container_environment

NOBODY = "65534:65534"
SCRATCH = "/tmp"
_MOUNT_MODES = ("ro", "rw")


@dataclass(frozen=True)
class Identity:
    """The uid and gid a container runs as."""

    uid: int
    gid: int

    @classmethod
    def parse(cls, text: str) -> Identity:
        uid, _, gid = text.partition(":")
        return cls(int(uid), int(gid))

    def __str__(self) -> str:
        return f"{self.uid}:{self.gid}"


def container_identity(configured: str | None, euid: int, egid: int) -> Identity:
    """The configured user; else nobody when the control plane is root, else its own user (a
    regular user cannot give the socket folder to anyone else)."""
    if configured is not None:
        return Identity.parse(configured)
    if euid == 0:
        return Identity.parse(NOBODY)
    return Identity(euid, egid)


def parse_mount(text: str) -> tuple[str, str] | tuple[str, str, str]:
    """`HOST:CONTAINER` or `HOST:CONTAINER:ro|rw`, as `docker run -v` takes them."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"docker mount {text!r} is not SRC:DST or SRC:DST:OPTIONS")
    destination = parts[1]
    if not destination.startswith("/") or destination.rstrip("/") in ("", SCRATCH):
        raise ValueError(
            f"docker mount {text!r}: the container path must be absolute, not / nor {SCRATCH}"
        )
    if len(parts) == 3 and parts[2] not in _MOUNT_MODES:
        raise ValueError(f"docker mount {text!r}: the mode is ro or rw, not {parts[2]!r}")
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0], parts[1], parts[2])


def run_options(
    settings: DockerSettings,
    spec: AttemptSpec,
    identity: Identity,
    mounts: list[tuple[str, str] | tuple[str, str, str]],
) -> dict[str, Any]:
    """python-on-whales' `docker.run` keywords for the attempt's container."""
    folder = str(spec.socket_path.parent)
    scratch = f"{SCRATCH}:rw,exec,nosuid,nodev,size={settings.tmp_size_mb}m,mode=1777"
    return {
        "init": True,  # PID 1 forwards TERM and reaps: a bare python as PID 1 ignores TERM
        "pull": "never",  # no registry is assumed; a missing image is an error at once
        # the workflow's own variables win: it may point HOME elsewhere (a rw mount)
        "envs": {"HOME": SCRATCH, "TMPDIR": SCRATCH, **container_environment(spec)},
        "labels": {
            "conveyor.attempt": spec.attempt_id,
            "conveyor.run": spec.run_id,
            "conveyor.mode": spec.mode.value,
        },
        "cpus": spec.plan.cpu,
        # swap equal to memory: the plan's memory is the whole budget, no swap on top
        "memory": f"{spec.plan.memory_mb}m",
        "memory_swap": f"{spec.plan.memory_mb}m",
        "pids_limit": settings.pids_limit,
        "user": str(identity),
        "cap_drop": ["ALL"],
        "security_options": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": [scratch],
        "volumes": [(folder, folder), *mounts],
        "networks": [settings.network],
    }


def hand_over(socket_path: Path, identity: Identity) -> None:
    """The attempt's socket folder (0700) and socket to the container's user, who alone may
    enter it. Raises PermissionError when this process may not give files away."""
    folder = socket_path.parent
    for path in (folder, socket_path):
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue  # no socket served (yet): the folder alone is handed over
        if (info.st_uid, info.st_gid) != (identity.uid, identity.gid):
            os.chown(path, identity.uid, identity.gid, follow_symlinks=False)
