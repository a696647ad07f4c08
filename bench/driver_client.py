"""The harness's side of a driver: a subprocess that performs workloads on request."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bench.options import REPO_ROOT


class DriverError(RuntimeError):
    """The driver died, answered nonsense, or reported an error."""


class DriverTimeout(DriverError):
    """The driver did not answer within the harness's own deadline."""


class Driver:
    """`async with Driver(argv, log) as d: await d.call({...})`; stderr goes to `log`.

    It runs in the repository's root with the root on PYTHONPATH, so `bench.drivers.*` and
    `bench.peers.*` import from any of the interpreters.
    """

    def __init__(self, argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
        self._argv = list(argv)
        self._log = log
        self._env = {**(os.environ if env is None else env), "PYTHONPATH": str(REPO_ROOT)}
        self._process: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}

    async def __aenter__(self) -> Self:
        with self._log.open("ab") as sink:
            self._process = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=sink,
                cwd=REPO_ROOT,
                env=self._env,
                limit=64 * 2**20,  # a reply may carry thousands of latencies
            )
        self.ready = (await self._read(120.0))["ready"]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        process = self._process
        assert process is not None and process.stdin is not None
        process.stdin.write(json.dumps(request).encode() + b"\n")
        await process.stdin.drain()
        reply = await self._read(timeout_s)
        if "error" in reply:
            raise DriverError(str(reply["error"]))
        return reply

    async def _read(self, timeout_s: float) -> dict[str, Any]:
        process = self._process
        assert process is not None and process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise DriverTimeout(f"no answer within {timeout_s:.0f} s") from None
        if not line:
            await process.wait()
            raise DriverError(f"the driver exited ({process.returncode}); see {self._log}")
        try:
            reply: dict[str, Any] = json.loads(line)
        except ValueError:
            raise DriverError(f"not JSON: {line[:200]!r}") from None
        return reply
