"""`conveyor dev`: the whole engine and the API in one process, for one local workflow."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click
import uvicorn
from starlette.types import ASGIApp

from app.cli.config import build_settings
from app.cli.dev_argv import (
    VALUES_FD_OPTION,
    can_restart,
    inline_warning,
    read_values,
    restart_without_values,
    split_inline_values,
)
from app.cli.dev_builds import (
    DevWorkflow,
    build_and_register,
    registered_line,
    watch_and_reregister,
)
from app.cli.dev_env import workflow_variables
from app.cli.errors import CliError
from app.cli.main import DEFAULT_URL
from app.server import create_app
from builder.base import BuildFailed
from builder.catalog import DEFAULT_START_COMMAND
from builder.node_project import is_node_project
from core.domain import VersionInfo, VersionStatus
from core.errors import ServiceError
from core.settings import Settings
from scheduler.registration import slugify
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime


class DevServer(uvicorn.Server):
    """Stops on SIGINT/SIGTERM without re-raising them, so the runtime closes cleanly after."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, self._stop)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    def _stop(self) -> None:
        # A second Ctrl-C skips waiting for open connections (long SSE streams, log follows).
        self.force_exit = self.should_exit
        self.should_exit = True


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("dev")
@click.argument("path", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), help="Default 8120 (CONVEYOR_PORT).")
@click.option("--host", help="Default 127.0.0.1 (CONVEYOR_HOST).")
@click.option(
    "--start-command",
    default=DEFAULT_START_COMMAND,
    show_default=True,
    help="How to start the workflow's worker.",
)
@click.option("--max-concurrency", type=click.IntRange(min=1), help="Runs active at once.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Database, blobs and logs (default: PATH/.conveyor).",
)
@click.option("--name", help="The workflow's slug (default: the folder's name).")
@click.option(
    "--env",
    "env_options",
    multiple=True,
    metavar="NAME",
    help="A variable of the workflow's, for its tasks (repeatable), its value from this shell's "
    "environment. NAME=VALUE works too but leaves the value in your shell's history. Tasks see "
    "no other variable of this shell's but PATH, HOME and a few.",
)
@click.option(
    "--env-file",
    "env_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="NAME=VALUE lines (a .env file) for the workflow's variables; --env wins.",
)
@click.option(VALUES_FD_OPTION, "values_fd", type=int, hidden=True)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a non-loopback --host (requests without a key are still accepted!).",
)
def dev_command(
    path: Path,
    port: int | None,
    host: str | None,
    start_command: str,
    max_concurrency: int | None,
    data_dir: Path | None,
    name: str | None,
    env_options: tuple[str, ...],
    env_files: tuple[Path, ...],
    values_fd: int | None,
    allow_remote: bool,
) -> None:
    """Run PATH's workflow locally: engine, local executor and API on 127.0.0.1:8120."""
    path = path.resolve()
    settings = build_settings(
        data_dir=data_dir,
        default_data_dir=path / ".conveyor",
        host=host,
        port=port,
        max_concurrency=max_concurrency,
    )
    # a local tool on the user's own machine: workflows may build from file:// repositories
    builds = settings.builds.model_copy(update={"allow_file_repos": True})
    settings = settings.model_copy(update={"builds": builds})
    if not is_loopback(settings.host) and not allow_remote:
        raise click.UsageError(
            f"refusing to serve on {settings.host}: `conveyor dev` accepts requests without an "
            "API key, so it stays on loopback unless you pass --allow-remote"
        )
    inline = read_values(values_fd) if values_fd is not None else {}
    env_vars = workflow_variables(env_options, env_files, {**os.environ, **inline})
    hide_inline_values()
    workflow = DevWorkflow(path, name or slugify(path.name), start_command, env_vars)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, workflow))


def hide_inline_values() -> None:
    """Warn about values given inline, and restart without them in this process's arguments."""
    _, values = split_inline_values(sys.argv[1:])
    if not values:
        return
    click.echo(inline_warning(list(values)), err=True)
    if can_restart(sys.argv):
        restart_without_values(sys.argv, sys.orig_argv, values)


def http_server(app: ASGIApp) -> DevServer:
    """uvicorn for `app`, quiet (the API logs requests itself), served on a socket from `listen`."""
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    return DevServer(config)


def served_url(host: str, sock: socket.socket) -> str:
    """The URL the socket serves, with the port it was given (`--port 0`: the one the system
    chose, which is how a caller learns it without picking one and racing to bind it)."""
    port = sock.getsockname()[1]
    name = f"[{host}]" if ":" in host else host
    return f"http://{name}:{port}"


def listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything else starts: a busy port fails fast."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        hint = " (is another `conveyor dev` running? pick one with --port)"
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.set_inheritable(True)
    return sock


async def serve(settings: Settings, workflow: DevWorkflow) -> None:
    sock = listen(settings.host, settings.port)
    runtime = await Runtime.open(settings, sandbox_required=False)
    try:
        await _register(runtime, workflow)
        await runtime.start()
        app = create_app(runtime, anonymous_workspace=DEFAULT_WORKSPACE_ID)
        server = http_server(app)
        url = served_url(settings.host, sock)
        example = await _example_command(runtime, workflow.slug, url)
        click.echo(f"Conveyor dev server on {url} (dashboard at {url}/)", err=True)
        click.echo(f"Next: in another terminal, `{example}`", err=True)
        if url != DEFAULT_URL:
            click.echo(
                f"Other clients: CONVEYOR_URL={url} for the conveyor CLI and SDK client; "
                f"RENDER_USE_LOCAL_DEV=true RENDER_LOCAL_DEV_URL={url} for Render's client",
                err=True,
            )
        async with watch_and_reregister(runtime, workflow):
            await server.serve(sockets=[sock])
        if not server.started:
            raise CliError(f"could not serve on {url} (is the port in use?)")
    finally:
        sock.close()
        await runtime.close()


def cli_command(url: str) -> str:
    """How to call this `conveyor` so that it reaches `url`: `--url` unless it is the default."""
    conveyor = cli_path()
    return conveyor if url == DEFAULT_URL else f"{conveyor} --url {url}"


async def _example_command(runtime: Runtime, slug: str, url: str) -> str:
    """A `conveyor run` line for the first task, its required parameters as placeholders."""
    page = await runtime.service.list_tasks(
        DEFAULT_WORKSPACE_ID, workflow_id=None, cursor=None, limit=100
    )
    tasks = sorted((t for t in page.items if t.workflow_slug == slug), key=lambda t: t.name)
    conveyor = cli_command(url)
    if not tasks:
        return f"{conveyor} tasks"
    # a task that needs arguments shows how to pass them; prefer one that fans out
    task = next((t for t in tasks if len(t.parameters) > 1), tasks[0])
    required = [f"<{p.name}>" for p in task.parameters if not p.has_default]
    if task.language == "typescript" and not task.parameters:
        required = ["<arguments…>"]  # Render's TypeScript SDK registers no parameters
    return " ".join([conveyor, "run", task.slug, *required, "--wait"])


def cli_path() -> str:
    """How to call this `conveyor` from the current folder: `conveyor` when PATH finds this
    one, else its path (`.venv/bin/conveyor` after `make dev`)."""
    this = Path(sys.executable).with_name("conveyor")
    found = shutil.which("conveyor")
    if found is not None and Path(found).resolve() == this.resolve():
        return "conveyor"
    try:
        return str(this.relative_to(Path.cwd()))
    except ValueError:
        return str(this)


async def _register(runtime: Runtime, workflow: DevWorkflow) -> VersionInfo:
    how = f"`{workflow.start_command}`"
    node = await asyncio.to_thread(is_node_project, workflow.path, "python")
    if node and workflow.start_command == DEFAULT_START_COMMAND:
        how = "the start script of its package.json"
    click.echo(f"Registering {workflow.path} as '{workflow.slug}' with {how} …", err=True)
    if workflow.env_vars is not None:
        names = ", ".join(sorted(workflow.env_vars)) or "(none)"
        click.echo(f"Workflow variables: {names}", err=True)
    since = datetime.now(UTC)
    try:
        version = await build_and_register(runtime, workflow)
    except ServiceError as exc:
        raise CliError(f"registration failed: {exc.message}") from None
    except BuildFailed as exc:
        raise CliError(f"build failed: {exc}") from None
    if version.status is not VersionStatus.READY:
        raise CliError(f"registration failed ({version.status.value}): {version.message or ''}")
    click.echo(registered_line(workflow.slug, version, since), err=True)
    return version
