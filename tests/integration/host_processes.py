"""Where a sandboxed task's process is on the host.

A task runs in a PID namespace of its own: the pid it sees means nothing outside it. So tasks
report `pid@starttime@pid:[namespace]` — their pid as their namespace numbers it, their start
time (field 22 of `/proc/<pid>/stat`, in clock ticks since boot) and their PID namespace (the
link `/proc/<pid>/ns/pid`), all three the same from every namespace. The host finds the one
process whose innermost pid (the last of `NSpid:` in `/proc/<pid>/status`), start time and
namespace are those. (Two attempts forked in the same clock tick are both pid 1: only their
namespaces tell them apart.)
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostProcess:
    """A process as the host sees it (fields 4 to 6 of its `stat`)."""

    pid: int
    ppid: int
    pgid: int
    sid: int


def _stat_fields(pid: int | str) -> list[str] | None:
    """The fields of `/proc/<pid>/stat` from the third (its state) on; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(")") + 2 :].split()


def _innermost_pid(pid: str) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    return None


def _namespace(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except (FileNotFoundError, ProcessLookupError):
        return None


def find(token: str) -> int:
    """The host pid of the process that reported `token`; it must still run.

    Raises:
        LookupError: No process, or more than one, is that one.
    """
    inner, ticks, namespace = token.strip().split("@")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields is None or fields[19] != ticks:
            continue
        if _innermost_pid(entry.name) == int(inner) and _namespace(entry.name) == namespace:
            found.append(int(entry.name))
    if len(found) != 1:
        raise LookupError(f"{len(found)} processes on the host are {token!r}: {found}")
    return found[0]


def host_process(pid: int) -> HostProcess:
    """Raises LookupError once `pid` is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        raise LookupError(f"process {pid} is gone")
    return HostProcess(pid, int(fields[1]), int(fields[2]), int(fields[3]))


def ancestors(pid: int, depth: int) -> list[int]:
    """`pid`'s parent, its parent's parent, … (`depth` of them), as the host sees them."""
    chain: list[int] = []
    for _ in range(depth):
        pid = host_process(pid).ppid
        chain.append(pid)
    return chain


def alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


async def reported(path: Path, timeout: float = 30) -> str:
    """What a task wrote to `path` (it writes it whole: another name, then a rename)."""
    async with asyncio.timeout(timeout):
        while not path.exists():
            await asyncio.sleep(0.02)
    return path.read_text()
