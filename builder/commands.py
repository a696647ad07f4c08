"""Run a build step as a subprocess, its output streamed line by line into the build log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from builder.base import BuildFailed
from builder.log import BuildLog


async def run_logged(
    argv: Sequence[str],
    *,
    log: BuildLog,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    what: str,
) -> None:
    """Run `argv`; BuildFailed when it exits non-zero or outlives `timeout` (then killed)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise BuildFailed(f"{what}: cannot run {argv[0]!r}: {exc}") from None
    assert process.stdout is not None
    try:
        async with asyncio.timeout(timeout):
            async for line in process.stdout:
                log.write(line)
            code = await process.wait()
    except TimeoutError:
        raise BuildFailed(f"{what}: still running after {timeout:g} s, stopped") from None
    finally:
        if process.returncode is None:
            # The step may have started children (pip, a shell's jobs): they go with it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    if code != 0:
        raise BuildFailed(f"{what} failed (exit code {code})")
