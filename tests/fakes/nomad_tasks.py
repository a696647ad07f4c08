"""How the fake Nomad runs an allocation's tasks: local processes standing in for docker containers.

Part of the fake in tests/fakes/nomad.py. A docker task's `image` names a `FakeImage` (a host
folder as its working directory, plus the image's ENV); its `command` and `args` run as a process
in their own session, with Nomad's task environment (NOMAD_ALLOC_DIR, NOMAD_TASK_DIR,
NOMAD_META_*, …) and the task's `Env` interpolated the way Nomad does. Resources are not enforced.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_INTERPOLATION = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")


@dataclass(frozen=True)
class FakeImage:
    """What an image name stands for on this host."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] = ()  # the image's ENTRYPOINT
    # a registry has it: the driver's pull of a `:latest` (or untagged) image succeeds
    pullable: bool = False


def now_ns() -> int:
    return time.time_ns()


def event(kind: str, message: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "Type": kind,
        "Time": now_ns(),
        "Message": message,
        "DisplayMessage": message,
        "Details": extra.pop("Details", {}),
        "ExitCode": extra.pop("ExitCode", 0),
        "Signal": extra.pop("Signal", 0),
        "FailsTask": extra.pop("FailsTask", False),
        "KillTimeout": extra.pop("KillTimeout", 0),
    }


@dataclass
class TaskRun:
    """One task of an allocation: its Nomad TaskState and its process."""

    spec: dict[str, Any]
    state: dict[str, Any] = field(
        default_factory=lambda: {
            "State": "pending",
            "Failed": False,
            "Restarts": 0,
            "StartedAt": None,
            "FinishedAt": None,
            "Events": [event("Received", "Task received by client")],
        }
    )
    process: asyncio.subprocess.Process | None = None
    killed: bool = False
    oom_killed: bool = False  # the kernel's OOM killer ended it (FakeCluster.oom_kill)

    @property
    def name(self) -> str:
        return str(self.spec["Name"])

    @property
    def sidecar(self) -> bool:
        lifecycle = self.spec.get("Lifecycle") or {}
        return lifecycle.get("Hook") == "prestart" and bool(lifecycle.get("Sidecar"))

    def add_event(self, kind: str, message: str = "", **extra: Any) -> None:
        self.state["Events"].append(event(kind, message, **extra))


def task_env(
    task: dict[str, Any], image: FakeImage, alloc_dir: Path, task_dir: Path, ids: dict[str, str]
) -> dict[str, str]:
    here = str(Path(sys.executable).parent)
    base = {
        "PATH": os.pathsep.join([here, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(task_dir),
        "LANG": "C.UTF-8",
        **image.env,
        "NOMAD_ALLOC_DIR": str(alloc_dir),
        "NOMAD_TASK_DIR": str(task_dir),
        "NOMAD_SECRETS_DIR": str(task_dir.parent / "secrets"),
        "NOMAD_TASK_NAME": str(task["Name"]),
        **ids,
    }
    env = dict(base)
    for key, value in (task.get("Env") or {}).items():
        env[key] = _INTERPOLATION.sub(lambda m: base.get(m.group(1), m.group(0)), value)
    return env


def container_argv(config: dict[str, Any], image: FakeImage) -> list[str]:
    """What Docker runs, as Nomad's docker driver builds it: `entrypoint` replaces the image's
    ENTRYPOINT; `command` and `args` are the CMD, after the ENTRYPOINT."""
    entrypoint = [str(a) for a in config.get("entrypoint") or image.entrypoint]
    command = [str(config["command"])] if config.get("command") else []
    args = [str(a) for a in config.get("args") or []]
    argv = [*entrypoint, *command, *args]
    if not argv:
        raise ValueError("the container has nothing to run")
    return argv


async def spawn(
    run: TaskRun, image: FakeImage, env: dict[str, str], logs: Path
) -> asyncio.subprocess.Process:
    argv = container_argv(run.spec.get("Config") or {}, image)
    resolved = shutil.which(argv[0], path=env["PATH"]) or argv[0]
    with (
        (logs / f"{run.name}.stdout.0").open("ab") as out,
        (logs / f"{run.name}.stderr.0").open("ab") as err,
    ):
        return await asyncio.create_subprocess_exec(
            resolved,
            *argv[1:],
            cwd=image.workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


def signal_group(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


async def kill(run: TaskRun, timeout_s: float) -> None:
    """Nomad's stop: SIGTERM, the task's kill timeout, then SIGKILL."""
    process = run.process
    if process is None or process.returncode is not None:
        return
    run.killed = True
    run.add_event("Killing", "Sent interrupt. Waiting 0s before force killing")
    signal_group(process, signal.SIGTERM)
    try:
        async with asyncio.timeout(max(timeout_s, 0.1)):
            await process.wait()
    except TimeoutError:
        signal_group(process, signal.SIGKILL)
        await process.wait()


def finish(run: TaskRun, returncode: int) -> None:
    """The TaskState Nomad reports once the task's container is gone.

    As Nomad's docker driver reports it (drivers/docker/driver.go, handle.go): the container's
    exit code, 128 + n for a process killed by signal n, and `Signal: 0`, since Docker does not
    say which signal; `oom_killed` in the Terminated event's details (TaskEvent.SetOOMKilled).
    """
    sig = -returncode if returncode < 0 else 0
    code = 128 + sig if sig else returncode
    details = {"exit_code": str(code), "signal": "0", "oom_killed": str(run.oom_killed).lower()}
    run.add_event("Terminated", f"Exit Code: {code}", ExitCode=code, Signal=0, Details=details)
    if run.killed:
        run.add_event("Killed", "Task successfully killed")
    run.state["State"] = "dead"
    run.state["Failed"] = code != 0 and not run.killed
    run.state["FinishedAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Alloc:
    id: str
    job_id: str
    eval_id: str
    group: dict[str, Any]
    directory: Path
    create_index: int
    modify_index: int
    tasks: dict[str, TaskRun]
    node: str = "fake-node-1"
    desired: str = "run"
    desired_description: str = ""
    client_status: str = "pending"
    runner: asyncio.Task[None] | None = None
    namespace: str = "default"
    created_ns: int = field(default_factory=now_ns)

    def stub(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "EvalID": self.eval_id,
            "Name": f"{self.job_id}.{self.group['Name']}[0]",
            "Namespace": self.namespace,
            "NodeID": self.node,
            "NodeName": self.node,
            "JobID": self.job_id,
            "TaskGroup": self.group["Name"],
            "DesiredStatus": self.desired,
            "DesiredDescription": self.desired_description,
            "ClientStatus": self.client_status,
            "ClientDescription": "",
            "TaskStates": {name: run.state for name, run in self.tasks.items()},
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
            "CreateTime": self.created_ns,
            "ModifyTime": now_ns(),
        }
