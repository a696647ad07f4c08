"""Each attempt is an OS process in its own process group, running the start command."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shlex
import signal
from collections.abc import Iterable
from pathlib import Path

from scheduler.executors.base import AttemptSpec, Handle, InstanceState, InstanceStatus
from scheduler.executors.environment import local_environment


def _process_start_ticks(pid: int) -> int | None:
    """The kernel's start time of `pid`, to tell it from a later process reusing the pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


class LocalExecutor:
    name = "local"

    def __init__(self, *, enforce_memory: bool = True, pass_env: Iterable[str] = ()) -> None:
        self._enforce_memory = enforce_memory
        self._pass_env = tuple(pass_env)
        self._processes: dict[int, asyncio.subprocess.Process] = {}

    async def start(self, spec: AttemptSpec) -> Handle:
        argv = shlex.split(spec.start_command)
        if not argv:
            raise ValueError("empty start command")
        env = local_environment(spec, pass_env=self._pass_env)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with spec.log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=spec.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        if self._enforce_memory:
            limit = spec.plan.memory_mb * 1024 * 1024
            with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                resource.prlimit(process.pid, resource.RLIMIT_DATA, (limit, limit))
        self._processes[process.pid] = process
        return {"pid": process.pid, "start_ticks": _process_start_ticks(process.pid)}

    async def wait(self, handle: Handle) -> InstanceState:
        process = self._processes.get(int(handle["pid"]))
        if process is None:
            return await self._poll_until_gone(handle)
        code = await process.wait()
        self._processes.pop(process.pid, None)
        # the task may have left children in its group: they die with the attempt
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        return InstanceState(InstanceStatus.EXITED, exit_code=code)

    async def _poll_until_gone(self, handle: Handle) -> InstanceState:
        while (await self.status(handle)).status is InstanceStatus.ALIVE:
            await asyncio.sleep(0.2)
        return InstanceState(InstanceStatus.UNKNOWN)

    async def status(self, handle: Handle) -> InstanceState:
        pid = int(handle["pid"])
        process = self._processes.get(pid)
        if process is not None:
            if process.returncode is None:
                return InstanceState(InstanceStatus.ALIVE)
            return InstanceState(InstanceStatus.EXITED, exit_code=process.returncode)
        ticks = _process_start_ticks(pid)
        if ticks is not None and ticks == handle.get("start_ticks"):
            return InstanceState(InstanceStatus.ALIVE)
        return InstanceState(InstanceStatus.UNKNOWN)

    async def stop(self, handle: Handle, grace_s: float) -> None:
        pid = int(handle["pid"])
        if (await self.status(handle)).status is not InstanceStatus.ALIVE:
            self._kill_group(pid, signal.SIGKILL)
            return
        self._kill_group(pid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while loop.time() < deadline:
            if (await self.status(handle)).status is not InstanceStatus.ALIVE:
                break
            await asyncio.sleep(0.05)
        self._kill_group(pid, signal.SIGKILL)

    @staticmethod
    def _kill_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
