"""Each attempt is an OS process in its own process group, running the start command."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import resource
import shlex
import shutil
import signal
import socket
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from scheduler.executors.base import (
    AttemptSpec,
    Handle,
    InstanceState,
    InstanceStatus,
    Mode,
    VersionSpec,
)
from scheduler.executors.environment import (
    local_attempt_environment,
    local_version_environment,
)
from scheduler.executors.journal import InstanceJournal
from scheduler.executors.zygote import Zygote
from scheduler.executors.zygotes import ZygotePool
from scheduler.sandbox.cgroups import AttemptCgroup
from scheduler.sandbox.identities import Identity
from scheduler.sandbox.policy import SANDBOX_VARIABLES, SandboxPolicy, launcher_argv

_UNLIMITED_MEMORY = 1 << 62


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


def _handle(pid: int, spec: AttemptSpec) -> Handle:
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "start_ticks": _process_start_ticks(pid),
        "socket": str(spec.socket_path),
        "session": pid,  # the instance leads a session: its socket answers that session only
    }


def _writing_to(log_path: Path) -> int | None:
    """The process group leader whose standard output is `log_path`, if one runs."""
    wanted = str(log_path)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "fd" / "1") != wanted:
                continue
            pid = int(entry.name)
            if os.getpgid(pid) == pid:  # the instance, not a process it started
                return pid
        except OSError:
            continue  # gone, or not ours to look into
    return None


def _leader_of(pids: Iterable[int]) -> int | None:
    """The instance among an attempt's processes: the one leading its own session (the
    processes it started share it)."""
    for pid in sorted(pids):
        with contextlib.suppress(OSError):
            if os.getsid(pid) == pid:
                return pid
    return None


def _hand_over(folder: Path, identity: Identity | None) -> None:
    """The instance's socket folder becomes its own uid's (a root control plane's sandbox)."""
    if identity is not None:
        os.chown(folder, identity.uid, identity.gid)


@functools.lru_cache(maxsize=256)
def _argv(start_command: str) -> tuple[str, ...]:
    return tuple(shlex.split(start_command))


class LocalExecutor:
    """Attempts as local processes: forked from the version's zygote, or spawned.

    Both kinds have the same handle (host, pid and its start time, the instance's socket) and
    the same process group, so status, stop and reconciliation after a restart do not care how
    a process began. Instances outlive a control plane that dies: the next one on this host
    finds them (by handle, or by their environment when the handle was not written yet) and
    serves their socket again.
    """

    name = "local"
    reattaches = True

    def __init__(
        self,
        *,
        enforce_memory: bool = True,
        pass_env: Iterable[str] = (),
        zygotes: ZygotePool | None = None,
        journal: InstanceJournal | None = None,
        sandbox: SandboxPolicy | None = None,
    ) -> None:
        self._enforce_memory = enforce_memory
        self._pass_env = tuple(pass_env)
        self._zygotes = zygotes
        self._journal = journal
        self._sandbox = sandbox
        self._cgroups = sandbox.cgroups if sandbox is not None else None
        self._identities: dict[int, Identity] = {}  # pid → the uid a spawned instance holds
        self._attempts: dict[int, str] = {}  # pid → attempt, for the journal
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._forked: dict[int, Zygote] = {}
        # per version: its environment as given, and the whole of what its processes see
        self._environments: dict[tuple[str, str, str], tuple[dict[str, str], dict[str, str]]] = {}

    @property
    def zygotes(self) -> ZygotePool | None:
        return self._zygotes

    async def prepare(self, version: VersionSpec) -> None:
        if self._zygotes is not None:
            self._zygotes.prepare(version, self._version_environment(version))

    async def close(self) -> None:
        if self._zygotes is not None:
            await self._zygotes.close()
        if self._journal is not None:
            self._journal.close()

    def _version_environment(self, version: VersionSpec) -> dict[str, str]:
        lookup = (version.version_id, version.start_command, str(version.cwd))
        known = self._environments.get(lookup)
        if known is None or known[0] != version.env:
            env = local_version_environment(version, pass_env=self._pass_env)
            if self._sandbox is not None:
                env.update(SANDBOX_VARIABLES)
            known = (dict(version.env), env)
            self._environments[lookup] = known
        return known[1]

    async def start(self, spec: AttemptSpec) -> Handle:
        argv = _argv(spec.start_command)
        if not argv:
            raise ValueError("empty start command")
        version = VersionSpec.of(spec)
        version_env = self._version_environment(version)
        env = local_attempt_environment(version_env, spec)
        memory = spec.plan.memory_mb * 1024 * 1024 if self._enforce_memory else None
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        cgroup = self._cgroup(spec)
        try:
            if self._zygotes is not None and spec.mode is Mode.RUN:
                pid = await self._fork(spec, version, version_env, env, memory, cgroup)
                if pid is not None:
                    return self._started(pid, spec, cgroup)
            pid = await self._spawn(list(argv), spec, env, memory, cgroup)
        except BaseException:
            if cgroup is not None:
                await asyncio.to_thread(cgroup.remove)
            raise
        return self._started(pid, spec, cgroup)

    def _cgroup(self, spec: AttemptSpec) -> AttemptCgroup | None:
        if self._sandbox is None or self._cgroups is None:
            return None
        limits = self._sandbox.limits(spec.plan)
        if not self._enforce_memory:
            limits = replace(limits, memory_bytes=_UNLIMITED_MEMORY)
        return self._cgroups.create(spec.attempt_id, limits)

    async def _fork(
        self,
        spec: AttemptSpec,
        version: VersionSpec,
        version_env: dict[str, str],
        env: dict[str, str],
        memory: int | None,
        cgroup: AttemptCgroup | None,
    ) -> int | None:
        assert self._zygotes is not None
        zygote = await self._zygotes.zygote_for(version, version_env)
        if zygote is None:
            return None
        request = None
        join = cgroup.open_join_files() if cgroup is not None else []
        try:
            if self._sandbox is not None:
                _hand_over(spec.socket_path.parent, zygote.identity)
                request = self._sandbox.instance_request(spec.socket_path.parent, len(join))
            pid = await self._zygotes.fork(
                zygote, version, version_env, env, spec.log_path, memory, request, join
            )
        finally:
            for fd in join:
                os.close(fd)
        if pid is not None:
            self._forked[pid] = zygote
        return pid

    def _started(self, pid: int, spec: AttemptSpec, cgroup: AttemptCgroup | None) -> Handle:
        handle = _handle(pid, spec)
        if cgroup is not None:
            handle["cgroup"] = spec.attempt_id
        if self._journal is not None:
            self._journal.record(spec.attempt_id, handle)
            self._attempts[pid] = spec.attempt_id
        return handle

    async def _spawn(
        self,
        argv: list[str],
        spec: AttemptSpec,
        env: dict[str, str],
        memory: int | None,
        cgroup: AttemptCgroup | None,
    ) -> int:
        identity = None
        join: list[int] = []
        if self._sandbox is not None:
            identity = self._sandbox.identity()
            _hand_over(spec.socket_path.parent, identity)
            program = shutil.which(argv[0], path=env.get("PATH"))
            view = self._sandbox.view(
                cwd=spec.cwd,
                env=env,
                identity=identity,
                shared=[spec.socket_path.parent],
                readable=[Path(program).parent] if program else [],
            )
            join = cgroup.open_join_files() if cgroup is not None else []
            argv = launcher_argv(view, spec.cwd, join, argv)
        try:
            with spec.log_path.open("ab") as log:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=spec.cwd,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                    pass_fds=join,
                )
        except BaseException:
            if identity is not None:
                identity.release()
            raise
        finally:
            for fd in join:
                os.close(fd)
        if memory is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                resource.prlimit(process.pid, resource.RLIMIT_DATA, (memory, memory))
        self._processes[process.pid] = process
        if identity is not None:
            self._identities[process.pid] = identity
        return process.pid

    async def adopt(self, attempt_id: str, handle: Handle) -> None:
        """An instance a previous control plane started is this one's to watch now."""
        if self._journal is not None:
            self._journal.record(attempt_id, handle)
            self._attempts[int(handle["pid"])] = attempt_id

    async def wait(self, handle: Handle) -> InstanceState:
        try:
            state = await self._wait(handle)
            return await self._ended(handle, state)
        finally:
            pid = int(handle["pid"])
            attempt_id = self._attempts.pop(pid, None)
            if attempt_id is not None and self._journal is not None:
                self._journal.forget(attempt_id)
            identity = self._identities.pop(pid, None)
            if identity is not None:
                identity.release()

    async def _ended(self, handle: Handle, state: InstanceState) -> InstanceState:
        """An instance's end, as its cgroup saw it (killed for want of memory); nothing of it
        is left running."""
        name = handle.get("cgroup")
        if name is None or self._cgroups is None:
            return state
        cgroup = self._cgroups.existing(str(name))
        out_of_memory = cgroup.out_of_memory()
        if not cgroup.remove_if_empty():
            await asyncio.to_thread(cgroup.remove)  # kills what is left, waits for it to go
        if out_of_memory and not state.out_of_memory:
            return replace(state, out_of_memory=True)
        return state

    async def _wait(self, handle: Handle) -> InstanceState:
        pid = int(handle["pid"])
        process = self._processes.get(pid)
        zygote = self._forked.get(pid)
        if process is not None:
            code: int | None = await process.wait()
            self._processes.pop(pid, None)
        elif zygote is not None:
            code = await zygote.exit_code(pid)
            self._forked.pop(pid, None)
            zygote.forget(pid)
            if code is None:  # the zygote died first: the child is an orphan now
                return await self._poll_until_gone(handle)
        else:
            return await self._poll_until_gone(handle)
        # the task may have left children in its group: they die with the attempt
        self._kill_group(pid, signal.SIGKILL)
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
        zygote = self._forked.get(pid)
        if zygote is not None:
            exited = zygote.exit_code(pid)
            if not exited.done():
                return InstanceState(InstanceStatus.ALIVE)
            if (code := exited.result()) is not None:
                return InstanceState(InstanceStatus.EXITED, exit_code=code)
        if handle.get("host", socket.gethostname()) != socket.gethostname():
            return InstanceState(InstanceStatus.UNKNOWN)  # another host's: not for us to say
        ticks = _process_start_ticks(pid)
        if ticks is not None and ticks == handle.get("start_ticks"):
            return InstanceState(InstanceStatus.ALIVE)
        return InstanceState(InstanceStatus.UNKNOWN)

    async def find(self, attempt_id: str, log_path: Path, socket_path: Path) -> Handle | None:
        """The live process of an attempt on this host whose handle a dead control plane had
        not stored: from its journal, else the session leader in the attempt's cgroup, else
        the process whose output goes to the attempt's log (it may not have had its input
        yet: forked, its environment is not in /proc)."""
        written = self._journal.left(attempt_id) if self._journal is not None else None
        if written is not None:
            return written
        cgroup = self._cgroups.existing(attempt_id) if self._cgroups is not None else None
        pid = _leader_of(cgroup.pids()) if cgroup is not None else None
        if pid is None:
            pid = await asyncio.to_thread(_writing_to, log_path)
        if pid is None:
            return None
        handle: Handle = {
            "host": socket.gethostname(),
            "pid": pid,
            "start_ticks": _process_start_ticks(pid),
            "socket": str(socket_path),
        }
        if _leader_of([pid]) == pid:
            handle["session"] = pid  # as `_handle` says: the socket answers this session only
        if cgroup is not None and cgroup.exists():
            handle["cgroup"] = attempt_id
        return handle

    def cgroup_names(self) -> set[str]:
        """The attempts whose cgroups are on this host (ended or not)."""
        return self._cgroups.names() if self._cgroups is not None else set()

    async def discard(self, attempt_id: str) -> None:
        """What is left of an attempt declared lost (a process its control plane never
        recorded, one a stale handle no longer names) is killed with its cgroup."""
        if self._cgroups is not None:
            await asyncio.to_thread(self._cgroups.existing(attempt_id).remove)

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
        if (name := handle.get("cgroup")) is not None and self._cgroups is not None:
            self._cgroups.existing(str(name)).kill()  # what left the group (its own session)

    @staticmethod
    def _kill_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
