"""Starting and stopping the systems' processes, all children of the harness."""

from __future__ import annotations

import asyncio
import contextlib
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


async def stop(
    process: asyncio.subprocess.Process, sig: int = signal.SIGINT, grace_s: float = 20.0
) -> None:
    """Asks the process to stop, then kills it; its leftover descendants are killed too."""
    if process.returncode is not None:
        return
    stats = procstat.all_stats()
    below = {pid: stats[pid].started for pid in procstat.descendants(stats, [process.pid])}
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    try:
        await asyncio.wait_for(process.wait(), grace_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    # a process it started and left behind (an attempt left to reconcile, for instance)
    for pid, started in below.items():
        stat = procstat.read_stat(pid)
        if stat is not None and stat.started == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


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
