"""The `conveyor` command: every failure is one `error: …` line on stderr."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from app.cli.context import CliContext
from app.cli.lazy import LazyGroup
from core.errors import ServiceError

DEFAULT_URL = "http://127.0.0.1:8120"


COMMANDS = {
    "dev": "app.cli.dev:dev_command",
    "run": "app.cli.runs:run_command",
    "runs": "app.cli.runs:runs_group",
    "tasks": "app.cli.runs:tasks_group",
    "flows": "app.cli.flows:flows_group",
    "keys": "app.cli.keys:keys_group",
    "workspace": "app.cli.workspace:workspace_group",
    "workflows": "app.cli.workflows:workflows_group",
    "versions": "app.cli.workflows:versions_group",
    "agent": "app.cli.agent:agent_command",
    "server": "app.cli.serve:server_command",
    "scheduler": "app.cli.serve:scheduler_command",
    "builder": "app.cli.builder:builder_command",
    "migrate": "app.cli.migrate:migrate_command",
    "github": "app.cli.github:github_group",
}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--url",
    envvar="CONVEYOR_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The Conveyor server (env CONVEYOR_URL).",
)
@click.option("--api-key", envvar="CONVEYOR_API_KEY", help="An API key (env CONVEYOR_API_KEY).")
@click.pass_context
def cli(ctx: click.Context, url: str, api_key: str | None) -> None:
    """Conveyor: run Python tasks, Render Workflows style, on your own machines."""
    state = CliContext(url=url, api_key=api_key or None)
    ctx.obj = state
    ctx.call_on_close(state.close)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: click's own error printing is replaced by `error: <cause>` (2 for usage)."""
    try:
        code = cli.main(args=argv, prog_name="conveyor", standalone_mode=False)
    except click.UsageError as exc:
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        _fail(f"{exc.format_message()}{hint}", 2)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        _fail("aborted", 1)
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(130)
    except ServiceError as exc:  # its message is meant for whoever started the process
        _fail(exc.message, 1)
    except Exception as exc:
        _fail(f"{type(exc).__name__}: {exc}", 1)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
