"""`conveyor builder` processes for tests: their environment, their processes, a second daemon.

A builder "on another node" needs a BuildKit with a cache of its own: `second_docker_daemon`
starts a separate dockerd (own data root, own bridge, no iptables changes) that only builds, so a
layer it reports `CACHED` came through the registry, never from the first daemon's cache.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings

DOCKER = "/usr/bin/docker"
REGISTRY = "127.0.0.1:5000"
LOCAL_BASE = "conveyor-base:bookworm"
# both daemons resolve the base from the registry, so their cache keys agree
REGISTRY_BASE = f"{REGISTRY}/conveyor-test-base:bookworm"
CONVEYOR = Path(sys.executable).parent / "conveyor"
SECRETS_KEY = "q0GXoZx0Z1eS9r9k0cRkI0mF3w7b3l8l6m8w2x0Y8aA="


def docker_ready() -> str | None:
    """Why BuildKit builds cannot run here, or None."""
    try:
        subprocess.run([DOCKER, "image", "inspect", LOCAL_BASE], check=True, capture_output=True)
        subprocess.run([DOCKER, "buildx", "version"], check=True, capture_output=True)
        httpx.get(f"http://{REGISTRY}/v2/", timeout=2).raise_for_status()
    except (OSError, subprocess.CalledProcessError, httpx.HTTPError) as exc:
        return f"docker, buildx, {LOCAL_BASE} and a registry on {REGISTRY} are needed: {exc}"
    return None


def push_registry_base() -> str:
    """The base image in the local registry (pushed once; a push of the same image is a no-op)."""
    subprocess.run([DOCKER, "tag", LOCAL_BASE, REGISTRY_BASE], check=True, capture_output=True)
    subprocess.run([DOCKER, "push", "-q", REGISTRY_BASE], check=True, capture_output=True)
    return REGISTRY_BASE


@contextlib.contextmanager
def second_docker_daemon(root: Path) -> Iterator[str]:
    """A dockerd of its own; yields its host (`unix://…`). Stopped by its pid at the end."""
    tag = uuid.uuid4().hex[:6]
    bridge = f"cvyb{tag}"  # interface names are at most 15 characters
    exec_root = Path(f"/tmp/cvyd-{tag}")  # short: containerd's socket lives below it
    sock = exec_root / "docker.sock"
    subnet = f"10.213.{int(tag, 16) % 250}.1/24"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    process: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(["ip", "addr", "add", subnet, "dev", bridge], check=True)
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        exec_root.mkdir()
        with (root / "dockerd.log").open("ab") as log:
            process = subprocess.Popen(
                [
                    "/usr/sbin/dockerd",
                    "--data-root",
                    str(root / "data"),
                    "--exec-root",
                    str(exec_root),
                    "--pidfile",
                    str(exec_root / "docker.pid"),
                    "-H",
                    f"unix://{sock}",
                    # its own bridge, and hands off the host's firewall and docker0
                    "--bridge",
                    bridge,
                    "--iptables=false",
                    "--ip-masq=false",
                    "--storage-driver",
                    "overlay2",
                    "--containerd-namespace",
                    f"cvy{tag}",
                    "--containerd-plugins-namespace",
                    f"cvy{tag}p",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        host = f"unix://{sock}"
        deadline = time.monotonic() + 60
        while subprocess.run([DOCKER, "-H", host, "info"], capture_output=True).returncode:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the second dockerd did not start; see {root / 'dockerd.log'}")
            time.sleep(0.2)
        yield host
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        shutil.rmtree(exec_root, ignore_errors=True)
        shutil.rmtree(root / "data", ignore_errors=True)


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings exactly as a process with `env` reads them."""
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        return Settings()


@dataclass
class BuilderRun:
    """A `conveyor builder` subprocess, its output in `log`."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def started_builds(self) -> list[str]:
        """Build ids this builder started, read from its log."""
        marker = f"builder {self.name}: build "
        return [
            line.split(marker, 1)[1].split()[0]
            for line in self.output().splitlines()
            if marker in line
        ]


def start_builder(name: str, env: dict[str, str], folder: Path) -> BuilderRun:
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{name}.log"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "RENDER_"))}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(CONVEYOR), "builder", "--name", name],
            env={**base, **env, "CONVEYOR_DATA_DIR": str(folder / name)},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    run = BuilderRun(name, process, log)
    deadline = time.monotonic() + 60
    while "taking builds" not in run.output():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"builder {name} did not start:\n{run.output()}")
        time.sleep(0.05)
    return run


def wait_until(what: str, probe: Any, timeout: float = 120, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
