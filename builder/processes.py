"""This process's descendants, found through /proc (Linux): to stop a CLI a library started."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

_PROC = Path("/proc")


def _parent(pid: int) -> int | None:
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: fields follow the last ')'
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _command_line(pid: int) -> str:
    try:
        return (
            (_PROC / str(pid) / "cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode(errors="replace")
        )
    except OSError:
        return ""


def descendants_running(marker: str) -> list[int]:
    """Pids of this process's descendants whose command line contains `marker`."""
    me = os.getpid()
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if marker not in _command_line(pid):
            continue
        ancestor: int | None = pid
        for _ in range(64):  # a chain that long is not ours
            ancestor = _parent(ancestor) if ancestor else None
            if ancestor is None or ancestor <= 1:
                break
            if ancestor == me:
                found.append(pid)
                break
    return found


def signal_descendants(marker: str, sig: signal.Signals = signal.SIGTERM) -> list[int]:
    pids = descendants_running(marker)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return pids
