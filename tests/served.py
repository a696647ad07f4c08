"""A real engine and its ASGI app(s) served by uvicorn on loopback ports, in a thread of its own.

Tests talk to it over real HTTP; `call` runs a coroutine on the engine's loop (the engine's
objects belong to that loop).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import uvicorn
from starlette.types import ASGIApp

from core.settings import Settings
from scheduler.runtime import Runtime

T = TypeVar("T")
Prepare = Callable[[Runtime], Awaitable[None]]
MakeApp = Callable[[Runtime], ASGIApp]
Cleanup = Callable[[list[ASGIApp]], Awaitable[None]]


@dataclass
class ServedEngine:
    urls: list[str] = field(default_factory=list)  # one per app, in order
    runtime: Runtime | None = None
    loop: asyncio.AbstractEventLoop | None = None
    servers: list[uvicorn.Server] = field(default_factory=list)
    error: BaseException | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def engine(self) -> Runtime:
        assert self.runtime is not None
        return self.runtime

    def client(self) -> httpx.Client:
        """A client of the first app (close it: use it in a `with`)."""
        return httpx.Client(base_url=self.url, timeout=30)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run `coro` on the engine's loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


async def _serve(
    state: ServedEngine,
    settings: Settings,
    prepare: Prepare,
    make_apps: Sequence[MakeApp],
    cleanup: Cleanup | None,
) -> None:
    runtime = await Runtime.open(settings)
    apps: list[ASGIApp] = []
    try:
        await prepare(runtime)
        servings = []
        for make_app in make_apps:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            apps.append(make_app(runtime))
            config = uvicorn.Config(
                apps[-1],
                lifespan="off",
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=2,
            )
            server = uvicorn.Server(config)
            state.servers.append(server)
            state.urls.append(f"http://127.0.0.1:{sock.getsockname()[1]}")
            servings.append(asyncio.create_task(server.serve(sockets=[sock])))
        state.runtime, state.loop = runtime, asyncio.get_running_loop()
        while not all(s.started for s in state.servers) and not any(t.done() for t in servings):
            await asyncio.sleep(0.01)
        state.ready.set()
        await asyncio.gather(*servings)
    finally:
        try:
            if cleanup is not None:
                await cleanup(apps)
            await runtime.close()
        finally:
            state.ready.set()


@contextmanager
def serve_engine(
    settings: Settings,
    prepare: Prepare,
    make_apps: Sequence[MakeApp],
    *,
    cleanup: Cleanup | None = None,
    name: str = "engine-server",
) -> Iterator[ServedEngine]:
    """Open a Runtime, `prepare` it (register, start), serve each app; close all at the end."""
    state = ServedEngine()

    def main() -> None:
        try:
            asyncio.run(_serve(state, settings, prepare, make_apps, cleanup))
        except BaseException as exc:
            state.error = exc
            state.ready.set()

    thread = threading.Thread(target=main, name=name, daemon=True)
    thread.start()
    state.ready.wait(120)
    if state.error is not None or not state.servers or not all(s.started for s in state.servers):
        thread.join(10)
        raise RuntimeError(f"{name} did not start: {state.error!r}")
    try:
        yield state
    finally:
        assert state.loop is not None
        for server in state.servers:
            state.loop.call_soon_threadsafe(setattr, server, "should_exit", True)
        thread.join(60)
