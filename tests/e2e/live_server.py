"""A real engine (hello + the retry workflow) behind two loopback uvicorn servers in a thread.

One server acts as `conveyor dev` does (anonymous workspace, no sign-in); the other requires an
API key, so sign-in and CSRF are exercised against the same engine.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from app.server import create_app
from core.domain import VersionStatus
from core.settings import ExecutorSettings, LimitSettings, Settings
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime

T = TypeVar("T")
WS = DEFAULT_WORKSPACE_ID
REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello"
RETRY = Path(__file__).parent / "workflows" / "retry"
MAX_CONCURRENCY = 2  # small, so a test can fill every slot and hold a run in `pending`


@dataclass
class LiveServer:
    url: str = ""  # anonymous, like `conveyor dev`
    auth_url: str = ""  # sign-in required
    api_key: str = ""
    runtime: Runtime | None = None
    loop: asyncio.AbstractEventLoop | None = None
    servers: list[uvicorn.Server] = field(default_factory=list)
    error: BaseException | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run `coro` on the engine's loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def engine(self) -> Runtime:
        assert self.runtime is not None
        return self.runtime


def _listen() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


async def _register(runtime: Runtime, source: Path, root: Path, slug: str, command: str) -> None:
    target = root / slug
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".conveyor"))
    version = await runtime.register_workflow(target, slug=slug, start_command=command)
    assert version.status is VersionStatus.READY, version.message


async def _serve(state: LiveServer, root: Path) -> None:
    settings = Settings(
        data_dir=root / "data",
        limits=LimitSettings(min_timeout_seconds=1, max_concurrency=MAX_CONCURRENCY),
        executor=ExecutorSettings(kill_grace_seconds=1.0),
    )
    runtime = await Runtime.open(settings)
    try:
        await _register(runtime, HELLO, root, "hello", "conveyor-worker main:app")
        await _register(runtime, RETRY, root, "retry", "conveyor-worker retry_once:app")
        await runtime.start()
        state.api_key = (await runtime.keys.create(WS, "e2e")).secret
        servings = []
        for anonymous in (WS, None):
            sock, url = _listen()
            app = create_app(runtime, anonymous_workspace=anonymous, sse_ping_seconds=5.0)
            config = uvicorn.Config(
                app,
                lifespan="off",
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=2,
            )
            server = uvicorn.Server(config)
            state.servers.append(server)
            servings.append(asyncio.create_task(server.serve(sockets=[sock])))
            if anonymous:
                state.url = url
            else:
                state.auth_url = url
        state.runtime, state.loop = runtime, asyncio.get_running_loop()
        while not all(s.started for s in state.servers) and not any(t.done() for t in servings):
            await asyncio.sleep(0.01)
        state.ready.set()
        await asyncio.gather(*servings)
    finally:
        state.ready.set()
        await runtime.close()


@contextmanager
def live_server(root: Path) -> Iterator[LiveServer]:
    state = LiveServer()

    def main() -> None:
        try:
            asyncio.run(_serve(state, root))
        except BaseException as exc:
            state.error = exc

    thread = threading.Thread(target=main, name="dashboard-server", daemon=True)
    thread.start()
    state.ready.wait(120)
    if state.error is not None or not state.servers or not all(s.started for s in state.servers):
        raise RuntimeError(f"dashboard server did not start: {state.error!r}")
    try:
        yield state
    finally:
        assert state.loop is not None
        for server in state.servers:
            state.loop.call_soon_threadsafe(setattr, server, "should_exit", True)
        thread.join(60)
