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
from builder.step_sandbox import StepSandbox


async def run_logged(
    argv: Sequence[str],
    *,
    log: BuildLog,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    what: str,
    sandbox: StepSandbox | None = None,
    writable: Sequence[Path] = (),
    readable: Sequence[Path] = (),
) -> None:
    """Run `argv`; BuildFailed when it exits non-zero or outlives `timeout` (then killed).

    With a `sandbox` (a step that runs a tenant's code), the step sees only the system, its
    interpreter, `readable` and `writable` (the only folders it may change).
    """
    if sandbox is None:
        await _run(argv, log=log, cwd=cwd, env=env, timeout=timeout, what=what, pass_fds=())
        return
    async with sandbox.step(argv, cwd=cwd, env=env, writable=writable, readable=readable) as (
        sandboxed,
        sandbox_env,
        fds,
    ):
        await _run(
            sandboxed, log=log, cwd=cwd, env=sandbox_env, timeout=timeout, what=what, pass_fds=fds
        )


async def _run(
    argv: Sequence[str],
    *,
    log: BuildLog,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    what: str,
    pass_fds: Sequence[int],
) -> None:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            pass_fds=pass_fds,
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
