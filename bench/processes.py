"""Starting and stopping the systems' processes, all children of the harness."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench import procstat


class StartError(RuntimeError):
    """A system's process exited or never became ready."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def log_tail(log: Path, chars: int = 2000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


async def start(
    argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path | None = None
) -> asyncio.subprocess.Process:
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env=env,
            cwd=cwd,
        )


def _below(pid: int) -> dict[int, int]:
    """The process's live descendants, with their start times."""
    stats = procstat.all_stats()
    return {p: stats[p].started for p in procstat.descendants(stats, [pid])}


def kill_all(processes: dict[int, int]) -> None:
    """SIGKILL to each process still alive, if the pid still names the same process."""
    for pid, started in processes.items():
        stat = procstat.read_stat(pid)
        if stat is not None and stat.started == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


async def stop(
    process: asyncio.subprocess.Process, sig: int = signal.SIGINT, grace_s: float = 20.0
) -> None:
    """Asks the process to stop, then kills it; its leftover descendants are killed too
    (`conveyor scheduler` leaves running attempts to the next scheduler, for instance)."""
    if process.returncode is not None:
        return
    seen = _below(process.pid)
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    loop = asyncio.get_running_loop()
    until = loop.time() + grace_s
    # what it starts while stopping must be found before it is orphaned
    while process.returncode is None and loop.time() < until:
        seen |= _below(process.pid)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 0.05)
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    kill_all(seen)


def adopt_orphans() -> None:
    """Makes this process the parent of every orphan below it (Linux's child subreaper), so
    that what a stopped system left behind can still be found and killed at the end."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_child_subreaper = 36
    libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def kill_leftovers() -> None:
    """Kills every process still below this one: called when every system has been stopped."""
    kill_all(_below(os.getpid()))


async def wait_healthy(
    url: str, process: asyncio.subprocess.Process, log: Path, deadline_s: float = 90.0
) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_s
    async with httpx.AsyncClient(timeout=2.0) as http:
        while loop.time() < until:
            if process.returncode is not None:
                raise StartError(f"exited with {process.returncode}:\n{log_tail(log)}")
            try:
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise StartError(f"{url} did not answer within {deadline_s:.0f} s:\n{log_tail(log)}")


async def run_to_end(
    argv: Sequence[str], env: dict[str, str], log: Path, timeout_s: float = 120.0
) -> str:
    """Runs a command to its end; returns its stdout (stderr goes to the log)."""
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=sink,
            env=env,
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise StartError(f"`{' '.join(argv)}` took over {timeout_s:.0f} s") from None
    if process.returncode != 0:
        raise StartError(f"`{' '.join(argv)}` failed ({process.returncode}):\n{log_tail(log)}")
    return out.decode()
