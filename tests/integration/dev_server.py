"""`conveyor dev` as a real subprocess on a free loopback port."""

from __future__ import annotations

import os
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


def wait_healthy(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"conveyor dev exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"conveyor dev did not answer within {timeout} s:\n{log.read_text()}")


@contextmanager
def dev_server(
    workflow: Path,
    data_dir: Path,
    *,
    start_command: str = "conveyor-worker main:app",
    name: str = "wf",
    port: int | None = None,
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Iterator[DevServer]:
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = data_dir.parent / f"dev-{port}-{time.monotonic_ns()}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                CONVEYOR,
                "dev",
                str(workflow),
                "--port",
                str(port),
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
    server = DevServer(process, url, log)
    try:
        wait_healthy(url, process, log)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
