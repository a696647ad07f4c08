"""A cgroup per attempt: its plan's CPU quota, memory limit and a pids limit.

cgroup v2 is used for each controller it has enabled at its root; otherwise that controller's
v1 hierarchy (a machine may have both, as Debian's hybrid layout does). The attempt's process
joins by writing to `cgroup.procs` files the control plane opened for it, before any of its
code runs. Needs the control plane to be allowed to make cgroups (root, or a delegated tree);
`Cgroups.detect` says None otherwise.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CONTROLLERS = ("cpu", "memory", "pids")
GROUP = "conveyor"
_CPU_PERIOD_US = 100_000
_EMPTY_SECONDS = 2.0


@dataclass(frozen=True)
class Limits:
    cpu: float  # cores
    memory_bytes: int
    pids: int


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, filesystem type, options) of every cgroup hierarchy of this process."""
    found: list[tuple[str, str, set[str]]] = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            fstype, _source, options = ([*right.split(), "", "", ""])[:3]
            if fstype in ("cgroup", "cgroup2"):
                found.append((left.split()[4], fstype, set(options.split(","))))
    return found


def attach_waits(mount_options: list[set[str]], rcu_expedited: str, rcu_normal: str) -> bool:
    """Whether moving a process into a cgroup of these mounts waits for an RCU grace period.

    A write to `cgroup.procs` takes the kernel's cgroup threadgroup lock for writing: a per-CPU
    semaphore that waits for a grace period (10-20 ms on an idle host) unless its hierarchy is
    mounted with `favordynmods`, or grace periods are expedited (`/sys/kernel/rcu_expedited`,
    unless `rcu_normal` overrides it), when it takes a fraction of a millisecond.
    """
    if all("favordynmods" in options for options in mount_options):
        return False
    return not (rcu_expedited.strip() == "1" and rcu_normal.strip() != "1")


def _read_setting(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


class Cgroups:
    """Where each controller lives on this machine."""

    def __init__(
        self, homes: dict[str, tuple[Path, bool]], mount_options: list[set[str]] | None = None
    ) -> None:
        self._homes = homes  # controller → (its `conveyor` folder, whether v2)
        self._mount_options = mount_options or []  # of the hierarchies the homes are on

    def attach_waits(self) -> bool:
        """Whether each attempt's start waits for a grace period to join its cgroup here."""
        return attach_waits(
            self._mount_options,
            _read_setting("/sys/kernel/rcu_expedited"),
            _read_setting("/sys/kernel/rcu_normal"),
        )

    @classmethod
    def detect(cls) -> Cgroups | None:
        """The controllers this process may use, or None when it may not make cgroups."""
        homes: dict[str, tuple[Path, bool]] = {}
        used: dict[str, set[str]] = {}  # mount point → its options, of the homes' hierarchies
        mounts = _mounts()
        for mount, fstype, options in mounts:
            if fstype != "cgroup2":
                continue
            with contextlib.suppress(OSError):
                enabled = (Path(mount) / "cgroup.controllers").read_text().split()
                for controller in CONTROLLERS:
                    if controller in enabled and controller not in homes:
                        homes[controller] = (Path(mount) / GROUP, True)
                        used[mount] = options
        for mount, fstype, options in mounts:
            if fstype != "cgroup":
                continue
            for controller in CONTROLLERS:
                if controller in options and controller not in homes:
                    homes[controller] = (Path(mount) / GROUP, False)
                    used[mount] = options
        try:
            for controller, (home, v2) in homes.items():
                home.mkdir(exist_ok=True)
                if v2:
                    _enable(home.parent, controller)
                    _enable(home, controller)
                probe = home / f"probe-{os.getpid()}"  # may this process make cgroups there?
                probe.mkdir(exist_ok=True)
                probe.rmdir()
        except OSError:
            return None
        return cls(homes, list(used.values())) if homes else None

    @property
    def controllers(self) -> tuple[str, ...]:
        return tuple(sorted(self._homes))

    def create(self, name: str, limits: Limits) -> AttemptCgroup:
        """The cgroup of one attempt (or build step), with its limits written."""
        cgroup = self.existing(name)
        for folder in cgroup.folders():
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder)
        cgroup.limit(limits)
        return cgroup

    def names(self) -> set[str]:
        """The cgroups made here (by any control plane on this host), by name."""
        found: set[str] = set()
        for home, _ in self._homes.values():
            with contextlib.suppress(OSError):
                found.update(entry.name for entry in os.scandir(home) if entry.is_dir())
        return found

    def existing(self, name: str) -> AttemptCgroup:
        """An attempt's cgroup that another control plane made (for its end after a restart)."""
        # plain strings and os calls: an attempt's start pays for these, pathlib cost a third
        return AttemptCgroup({c: (f"{home}/{name}", v2) for c, (home, v2) in self._homes.items()})


def _enable(folder: Path, controller: str) -> None:
    control = folder / "cgroup.subtree_control"
    if controller not in control.read_text().split():
        control.write_text(f"+{controller}")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


class AttemptCgroup:
    def __init__(self, folders: dict[str, tuple[str, bool]]) -> None:
        self._folders = folders

    def folders(self) -> set[str]:
        return {folder for folder, _ in self._folders.values()}

    def limit(self, limits: Limits) -> None:
        for controller, (folder, v2) in self._folders.items():
            if controller == "cpu":
                quota = max(1000, int(limits.cpu * _CPU_PERIOD_US))
                if v2:
                    _write(f"{folder}/cpu.max", f"{quota} {_CPU_PERIOD_US}")
                else:
                    _write(f"{folder}/cpu.cfs_period_us", str(_CPU_PERIOD_US))
                    _write(f"{folder}/cpu.cfs_quota_us", str(quota))
            elif controller == "memory":
                if v2:
                    _write(f"{folder}/memory.max", str(limits.memory_bytes))
                    with contextlib.suppress(OSError):
                        _write(f"{folder}/memory.swap.max", "0")
                else:
                    _write(f"{folder}/memory.limit_in_bytes", str(limits.memory_bytes))
                    with contextlib.suppress(OSError):  # swap accounting may be off
                        _write(f"{folder}/memory.memsw.limit_in_bytes", str(limits.memory_bytes))
            elif controller == "pids":
                _write(f"{folder}/pids.max", str(limits.pids))

    def open_join_files(self) -> list[int]:
        """Open `cgroup.procs` files: writing "0" to each moves the writer into the cgroup."""
        return [
            os.open(f"{folder}/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
            for folder in self.folders()
        ]

    def join(self, pid: int) -> None:
        for folder in self.folders():
            _write(f"{folder}/cgroup.procs", str(pid))

    def out_of_memory(self) -> bool:
        """Whether the kernel killed a process of it for want of memory."""
        entry = self._folders.get("memory")
        if entry is None:
            return False
        folder, v2 = entry
        name = "memory.events" if v2 else "memory.oom_control"
        try:
            lines = _read(f"{folder}/{name}").splitlines()
        except OSError:
            return False
        counts = dict(line.split() for line in lines if len(line.split()) == 2)
        return int(counts.get("oom_kill", "0")) > 0

    def exists(self) -> bool:
        return any(os.path.isdir(folder) for folder in self.folders())

    def pids(self) -> set[int]:
        found: set[int] = set()
        for folder in self.folders():
            with contextlib.suppress(OSError):
                found.update(int(p) for p in _read(f"{folder}/cgroup.procs").split())
        return found

    def kill(self) -> None:
        """Every process still in it, killed."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove_if_empty(self) -> bool:
        """Remove the folders if no process is left in them (the usual end: a few system calls,
        cheaper than handing `remove` to a thread); False if some process is."""
        if self.pids():
            return False
        for folder in self.folders():
            try:
                os.rmdir(folder)
            except FileNotFoundError:
                pass
            except OSError:  # a process joined meanwhile
                return False
        return True

    def remove(self) -> None:
        """Kill what is left, wait for it to leave, remove the folders (best effort)."""
        deadline = time.monotonic() + _EMPTY_SECONDS
        while self.pids() and time.monotonic() < deadline:
            self.kill()
            time.sleep(0.01)
        for folder in self.folders():
            with contextlib.suppress(OSError):
                os.rmdir(folder)
