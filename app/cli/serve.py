"""`conveyor server` and `conveyor scheduler`: the production processes, configured by CONVEYOR_*.

Several of each may run against one PostgreSQL database: admissions are serialised per
workspace, claims skip locked rows, and run changes cross processes by LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import click

from app.cli.config import build_settings
from app.cli.dev import http_server, listen, served_url
from app.cli.errors import CliError
from app.server import create_app
from core.settings import Settings
from scheduler.runtime import NOTHING, Runtime, Work

logger = logging.getLogger(__name__)


@click.command("server")
@click.option("--host", help="Default 127.0.0.1 (CONVEYOR_HOST).")
@click.option("--port", type=click.IntRange(0, 65535), help="Default 8120 (CONVEYOR_PORT).")
def server_command(host: str | None, port: int | None) -> None:
    """Serve the REST API and the dashboard (API keys required); runs nothing itself."""
    settings = build_settings(host=host, port=port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_api(settings))


async def _serve_api(settings: Settings) -> None:
    sock = listen(settings.host, settings.port)
    # the API runs no task; it runs builds only when `conveyor builder` processes do not
    work: frozenset[Work] = frozenset({"builds"}) if settings.builds.in_process else NOTHING
    runtime = await Runtime.open(settings, work=work)
    try:
        server = http_server(create_app(runtime))
        url = served_url(settings.host, sock)
        click.echo(f"Conveyor API on {url}", err=True)
        # SIGTERM: stop accepting, let in-flight requests finish (uvicorn's graceful shutdown)
        await server.serve(sockets=[sock])
        if not server.started:
            raise CliError(f"could not serve on {url}")
    finally:
        sock.close()
        await runtime.close()


@click.command("scheduler")
@click.option("--max-concurrency", type=click.IntRange(min=1), help="Runs active at once.")
def scheduler_command(max_concurrency: int | None) -> None:
    """Admit runs, start their instances and watch them; SIGTERM leaves runs to reconcile."""
    settings = build_settings(max_concurrency=max_concurrency)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run_scheduler(settings))


async def _run_scheduler(settings: Settings) -> None:
    runtime = await Runtime.open(settings, work=frozenset({"tasks"}))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runtime.start()
        click.echo(f"Conveyor scheduler {runtime.scheduler.membership.id} running", err=True)
        await stop.wait()
        click.echo("stopping: no new admissions; running attempts are left to reconcile", err=True)
    finally:
        # the instances keep running; the next scheduler (or another one) reconciles them
        await runtime.close(stop_instances=False)
