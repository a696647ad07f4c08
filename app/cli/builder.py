"""`conveyor builder`: take builds from the queue the servers fill, build, push, register.

Several builders may share one PostgreSQL database (claims skip locked rows). The servers stop
building themselves with `CONVEYOR_BUILDS__IN_PROCESS=false`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from typing import Any

import click
import uvicorn

from app.builder_app import create_builder_app
from app.builds import make_build_execution
from app.cli.config import build_settings
from app.cli.dev import listen
from builder.queue import BuildQueue
from builder.worker import BuildWorker
from core.settings import Settings
from scheduler.runtime import Runtime

logger = logging.getLogger(__name__)


class _RelayServer(uvicorn.Server):
    """uvicorn that leaves the signals to the builder (which finishes its builds first)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@click.command("builder")
@click.option("--name", help="Shown on every build it runs (CONVEYOR_BUILDER__NAME).")
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    help="Builds at once (CONVEYOR_BUILDS__PARALLEL_BUILDS, default 2).",
)
def builder_command(name: str | None, parallel: int | None) -> None:
    """Build queued workflow versions; SIGTERM finishes or hands back the builds in progress."""
    settings = builder_settings(build_settings(), name=name, parallel=parallel)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_builder(settings))


def builder_settings(settings: Settings, *, name: str | None, parallel: int | None) -> Settings:
    """The process's settings as a builder sees them."""
    builder = settings.builder
    update: dict[str, Any] = {
        # attempts run where the scheduler is: no warm interpreters here
        "executor": settings.executor.model_copy(update={"zygote": False}),
    }
    if name:
        update["builder"] = builder = builder.model_copy(update={"name": name})
    if parallel:
        update["builds"] = settings.builds.model_copy(update={"parallel_builds": parallel})
    if settings.executor.kind == "nomad":
        # register steps on Nomad call back here, not the server
        url = builder.advertise_url or f"http://{builder.listen_host}:{builder.listen_port}"
        update["nomad"] = settings.nomad.model_copy(update={"control_plane_url": url})
    return settings.model_copy(update=update)


async def run_builder(settings: Settings) -> None:
    relay: socket.socket | None = None
    if settings.executor.kind == "nomad":
        relay = listen(settings.builder.listen_host, settings.builder.listen_port)
    runtime = await Runtime.open(settings, work=frozenset({"builds"}))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server: _RelayServer | None = None
    serving: asyncio.Task[None] | None = None
    try:
        if relay is not None:
            server = _RelayServer(
                uvicorn.Config(
                    create_builder_app(runtime),
                    lifespan="off",
                    log_level="warning",
                    access_log=False,
                )
            )
            serving = asyncio.create_task(server.serve(sockets=[relay]))
        queue = BuildQueue(runtime.store.sessions, settings.builder)
        worker = BuildWorker(
            queue,
            make_build_execution(runtime),
            settings.builder,
            slots=settings.builds.parallel_builds,
        )
        click.echo(f"Conveyor builder {queue.name} ({queue.id}) taking builds", err=True)
        await worker.run(stop)
        click.echo(f"builder {queue.name} stopped", err=True)
    finally:
        if server is not None and serving is not None:
            server.should_exit = True
            await serving
        if relay is not None:
            relay.close()
        await runtime.close(stop_instances=False)
