"""An engine on the Nomad executor with its API served by uvicorn, for a fake or a real Nomad."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from app.server import create_app
from core.domain import RunInfo, VersionStatus
from core.settings import LimitSettings, NomadSettings, Settings
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime
from tests.fakes.nomad import FakeImage, FakeNomad, serve_fake_nomad
from tests.integration.engine_fixtures import copy_workflow, executor_settings

WS = DEFAULT_WORKSPACE_ID
SECRET = "attempt-token-secret-for-tests"
AGENT_IMAGE = "conveyor:test"
WORKER_IMAGE = "engine-worker:test"
# both images have an ENTRYPOINT that would swallow a `command`: the jobs must replace it
WRONG_ENTRYPOINT = ("/bin/sh", "-c", "echo the image's entrypoint ran; exit 3")
T = TypeVar("T")


@dataclass(frozen=True)
class NomadTarget:
    """Where the attempts run: the fake, or a real agent (test_executor_nomad_real.py)."""

    address: str
    agent_image: str
    worker_image: str
    callback_host: str  # the address allocations reach the control plane at
    bind_host: str
    scratch: Path  # ENGINE_SCRATCH as the worker sees it; shared with the test
    workflow: Path  # the engine workflow, registered from here (the image holds a copy)
    fake: FakeNomad | None = None


@contextmanager
def fake_target(tmp_path: Path, **options: Any) -> Iterator[NomadTarget]:
    """The fake Nomad (`options` are FakeNomad's) with the engine workflow as the worker image."""
    workflow = copy_workflow("nomad", tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    images = {
        AGENT_IMAGE: FakeImage(tmp_path, entrypoint=WRONG_ENTRYPOINT),
        WORKER_IMAGE: FakeImage(
            workflow, {"ENGINE_SCRATCH": str(scratch)}, entrypoint=WRONG_ENTRYPOINT
        ),
    }
    # allocation folders hold the socket: keep them short for the 108-byte limit
    root = Path(f"/tmp/fn-{tmp_path.name[-12:]}-{id(images):x}")
    root.mkdir()
    try:
        with serve_fake_nomad(root, images, **options) as fake:
            yield NomadTarget(
                fake.url,
                AGENT_IMAGE,
                WORKER_IMAGE,
                "127.0.0.1",
                "127.0.0.1",
                scratch,
                workflow,
                fake,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class NomadEngine:
    runtime: Runtime
    url: str  # the control plane's API, which is also what the sidecars call
    port: int
    settings: Settings


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def engine_settings(target: NomadTarget, data_dir: Path, port: int, **nomad: Any) -> Settings:
    """The engine's settings; `nomad` adds to or overrides the NomadSettings."""
    return Settings(
        data_dir=data_dir,
        limits=LimitSettings(min_timeout_seconds=1),
        executor=executor_settings(kind="nomad", kill_grace_seconds=1.0),
        nomad=NomadSettings(
            **{
                "address": target.address,
                "control_plane_url": f"http://{target.callback_host}:{port}",
                "attempt_token_secret": SECRET,
                "agent_image": target.agent_image,
                "worker_image": target.worker_image,
                "blocking_wait_seconds": 5.0,
                "cpu_mhz_per_core": 100,
                "max_connections": 16,
                **nomad,
            }
        ),
    )


@asynccontextmanager
async def nomad_engine(
    target: NomadTarget,
    data_dir: Path,
    *,
    port: int = 0,
    register: bool = True,
    stop_instances: bool = True,
    env_vars: dict[str, str] | None = None,
    nomad: dict[str, Any] | None = None,
) -> AsyncIterator[NomadEngine]:
    """Serve the API first (registration runs on Nomad and calls back), then register, start."""
    sock = _bind(target.bind_host, port)
    port = int(sock.getsockname()[1])
    settings = engine_settings(target, data_dir, port, **(nomad or {}))
    runtime = await Runtime.open(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime),
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await until(lambda: _started(server, serving), "the API to start", 30)
        if register:
            version = await runtime.register_workflow(
                target.workflow,
                slug="wf",
                start_command="conveyor-worker main:app",
                env_vars=env_vars,
            )
            assert version.status is VersionStatus.READY, version.message
        await runtime.start()
        yield NomadEngine(runtime, f"http://127.0.0.1:{port}", port, settings)
    finally:
        # the API first: a relayed request still in flight must not outlive the database
        server.should_exit = True
        await serving
        sock.close()
        await runtime.close(stop_instances=stop_instances)


async def _started(server: uvicorn.Server, serving: asyncio.Task[None]) -> bool:
    if serving.done():
        serving.result()
        raise RuntimeError("the API server stopped")
    return bool(server.started)


async def until(
    check: Callable[[], Awaitable[T]], what: str, timeout: float = 30, every: float = 0.05
) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(every)


async def run_to_end(runtime: Runtime, task: str, input: object, timeout: float = 60) -> RunInfo:
    run = await runtime.service.create_run(WS, task, input)
    done = await runtime.service.wait_run(WS, run.id, timeout)
    assert done.status.terminal, f"{task} still {done.status} after {timeout} s"
    return done


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"
