"""The executor seam: start an instance for an attempt, stop it, ask after it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from core.settings import Plan

Handle = dict[str, Any]  # JSON-able; stored with the attempt so a new process can find it
# records why an attempt's instance is not running yet (None: it runs), e.g. no capacity
ReasonSink = Callable[[str, str | None], Awaitable[None]]


# the run's own ids, set per attempt beside the version's environment
ATTEMPT_VARIABLES = frozenset({"CONVEYOR_TASK_RUN_ID", "CONVEYOR_ATTEMPT"})


class Mode(StrEnum):
    RUN = "run"  # execute one task
    REGISTER = "register"  # report the task list


@dataclass(frozen=True)
class AttemptSpec:
    attempt_id: str
    run_id: str
    attempt: int
    mode: Mode
    start_command: str
    cwd: Path
    socket_path: Path
    log_path: Path
    plan: Plan
    env: dict[str, str] = field(default_factory=dict)
    version_id: str = ""  # the workflow version (register mode: `attempt_id` is the version id)
    image: str | None = None  # the version's built image, for container executors


@dataclass(frozen=True)
class VersionSpec:
    """What every attempt of a version shares: enough to get ready for them ahead of time."""

    version_id: str
    start_command: str
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)  # the version's, no attempt's ids

    @classmethod
    def of(cls, spec: AttemptSpec) -> VersionSpec:
        env = {k: v for k, v in spec.env.items() if k not in ATTEMPT_VARIABLES}
        return cls(spec.version_id, spec.start_command, spec.cwd, env)


class InstanceStatus(StrEnum):
    ALIVE = "alive"  # still running
    EXITED = "exited"  # ended; `exit_code` says how
    UNKNOWN = "unknown"  # no trace of it (e.g. after a restart, or a reused pid)
    LOST = "lost"  # gone with the machine it ran on (a cluster lost its node): retried as lost


@dataclass(frozen=True)
class InstanceState:
    status: InstanceStatus
    exit_code: int | None = None  # negative: killed by that signal
    out_of_memory: bool = False
    reason: str | None = None  # why an ALIVE instance is not running yet (e.g. no capacity)


def can_reattach(executor: object) -> bool:
    """Whether the executor sets `reattaches = True`: its running instances outlive the control
    plane (their requests reach whichever control plane is up), so reconcile watches them again
    instead of killing them."""
    return getattr(executor, "reattaches", False) is True


async def discard_leftovers(executor: object, attempt_id: str) -> None:
    """Kill what is left of an attempt declared lost, if the executor can tell (its `discard`):
    the local executor's cgroup holds every process an attempt started, found or not."""
    discard = getattr(executor, "discard", None)
    if discard is not None:
        await discard(attempt_id)


async def check_ready(executor: object) -> None:
    """Run the executor's `check()` if it has one: what it runs on is supported and reachable
    (the Nomad executor reads the cluster's version). Raises when it is not."""
    check = getattr(executor, "check", None)
    if check is not None:
        await check()


async def retire_version(executor: object, version_id: str) -> None:
    """Run the executor's `retire(version_id)` if it has one: the version takes no new runs, so
    what was made for it alone can go (the Nomad executor stops its parameterized jobs)."""
    retire = getattr(executor, "retire", None)
    if retire is not None:
        await retire(version_id)


class Executor(Protocol):
    name: str

    async def start(self, spec: AttemptSpec) -> Handle:
        """Start the instance and return at once; never waits for the task."""
        ...

    async def stop(self, handle: Handle, grace_s: float) -> None:
        """TERM, wait up to `grace_s`, then KILL; returns once the instance is gone."""
        ...

    async def status(self, handle: Handle) -> InstanceState: ...

    async def wait(self, handle: Handle) -> InstanceState:
        """Block until the instance ends (only for instances this process started)."""
        ...

    async def prepare(self, version: VersionSpec) -> None:
        """Get ready for the version's attempts ahead of need (returns at once)."""
        ...

    async def find(self, attempt_id: str, log_path: Path, socket_path: Path) -> Handle | None:
        """The instance of an attempt whose handle was never stored, if it can be found (its
        log and socket are where its attempt says)."""
        ...

    async def adopt(self, attempt_id: str, handle: Handle) -> None:
        """An instance a previous control plane started is this one's to watch from now on."""
        ...

    async def close(self) -> None:
        """Release what the executor holds; running instances are not touched."""
        ...
