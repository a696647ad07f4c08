"""`conveyor dev` as a real subprocess on a loopback port it binds itself and reports."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))


def free_port() -> int:
    """A port free a moment ago, for what must be told its port before it binds (a port named
    in a document, a git server a fake starts); a process that can bind port 0 and report it
    should (see `wait_healthy`)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class DevServer:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def served_url(process: subprocess.Popen[bytes], log: Path, banner: str, timeout: float) -> str:
    """The URL the process says it serves: it binds the port itself (`--port 0`), so the port
    is its own from the start and no other process can answer there."""
    pattern = re.compile(re.escape(banner) + r" (http://\S+)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pattern.search(log.read_text(errors="replace"))
        if found:
            return found.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"{banner!r} exited with {process.returncode}:\n{log.read_text()}")
        time.sleep(0.05)
    raise RuntimeError(f"no {banner!r} line within {timeout} s:\n{log.read_text()}")


def wait_healthy(
    process: subprocess.Popen[bytes],
    log: Path,
    *,
    banner: str = "Conveyor dev server on",
    timeout: float = 60,
) -> str:
    """The process's URL once `/healthz` answers there, checking the process is still alive
    (an answer from anything else is impossible: the port is the process's own)."""
    started = time.monotonic()
    url = served_url(process, log, banner, timeout)
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{banner!r} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s:\n{log.read_text()}")


@contextmanager
def dev_server(
    workflow: Path,
    data_dir: Path,
    *,
    start_command: str = "conveyor-worker main:app",
    name: str = "wf",
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    ready_timeout: float = 60,
) -> Iterator[DevServer]:
    """`conveyor dev` on a port the system gives it (`--port 0`), read back from its output;
    `ready_timeout` covers its first registration (a first `npm install` reaches the registry)."""
    log = data_dir.parent / f"dev-{time.monotonic_ns()}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                CONVEYOR,
                "dev",
                str(workflow),
                "--port",
                "0",
                "--data-dir",
                str(data_dir),
                "--start-command",
                start_command,
                "--name",
                name,
                *extra,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    try:
        yield DevServer(process, wait_healthy(process, log, timeout=ready_timeout), log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
