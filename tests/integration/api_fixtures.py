"""A real engine on a temporary data dir, served by uvicorn on 127.0.0.1 in a thread."""

from __future__ import annotations

import asyncio
import socket
import textwrap
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn

from app.server import create_app
from core.domain import VersionStatus
from core.settings import ExecutorSettings, LimitSettings, Settings
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime

T = TypeVar("T")
SLUG = "api"
WS = DEFAULT_WORKSPACE_ID

WORKFLOW = textwrap.dedent("""
    import math
    import time

    from conveyor import Retry, TaskContext, Workflows

    app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


    @app.task
    def square(a: int) -> int:
        return a * a


    @app.task
    def fails(message: str) -> str:
        raise ValueError(message)


    @app.task
    def chatty(n: int) -> int:
        for i in range(n):
            print(f"line {i}", flush=True)
        return n


    @app.task
    def slow(seconds: float) -> str:
        time.sleep(seconds)
        return "done"


    @app.task
    def not_a_number() -> float:
        return math.nan


    @app.task
    async def square_plus_one(ctx: TaskContext, a: int) -> int:
        return await ctx.run(square, a) + 1
""")


def write_workflow(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.py").write_text(WORKFLOW)
    return folder


def make_settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        limits=LimitSettings(min_timeout_seconds=1),
        executor=ExecutorSettings(kill_grace_seconds=1.0),
    )


@dataclass
class ApiServer:
    url: str = ""
    runtime: Runtime | None = None
    loop: asyncio.AbstractEventLoop | None = None
    server: uvicorn.Server | None = None
    error: BaseException | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run `coro` on the server's loop (the engine lives there) and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def engine(self) -> Runtime:
        assert self.runtime is not None
        return self.runtime


async def _serve(state: ApiServer, root: Path, anonymous: str | None, ping: float) -> None:
    runtime = await Runtime.open(make_settings(root / "data"))
    try:
        version = await runtime.register_workflow(
            write_workflow(root / "workflow"), slug=SLUG, start_command="conveyor-worker main:app"
        )
        assert version.status is VersionStatus.READY, version.message
        await runtime.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        app = create_app(runtime, anonymous_workspace=anonymous, sse_ping_seconds=ping)
        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
        server = uvicorn.Server(config)
        state.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        state.runtime, state.loop, state.server = runtime, asyncio.get_running_loop(), server
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        state.ready.set()
        await serving
    finally:
        state.ready.set()
        await runtime.close()


@contextmanager
def serve_api(root: Path, *, anonymous: str | None = WS, ping: float = 25.0) -> Iterator[ApiServer]:
    """Open a Runtime with the test workflow registered and serve the API; skip without engine."""
    state = ApiServer()

    def main() -> None:
        try:
            asyncio.run(_serve(state, root, anonymous, ping))
        except BaseException as exc:
            state.error = exc

    thread = threading.Thread(target=main, name="api-server", daemon=True)
    thread.start()
    state.ready.wait(120)
    if isinstance(state.error, NotImplementedError):
        pytest.skip("the engine is not implemented yet (Runtime raises NotImplementedError)")
    if state.error is not None or state.server is None or not state.server.started:
        raise RuntimeError(f"API server did not start: {state.error!r}")
    try:
        yield state
    finally:
        server, loop = state.server, state.loop
        assert loop is not None
        loop.call_soon_threadsafe(setattr, server, "should_exit", True)
        thread.join(60)
