"""The `conveyor` command: every failure is one `error: …` line on stderr."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from app.cli.agent import agent_command
from app.cli.context import CliContext
from app.cli.dev import dev_command
from app.cli.keys import keys_group
from app.cli.runs import run_command, runs_group, tasks_command
from app.cli.serve import scheduler_command, server_command
from app.cli.workflows import versions_group, workflows_group

DEFAULT_URL = "http://127.0.0.1:8120"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


cli.add_command(dev_command)
cli.add_command(run_command)
cli.add_command(runs_group)
cli.add_command(tasks_command)
cli.add_command(keys_group)
cli.add_command(workflows_group)
cli.add_command(versions_group)
cli.add_command(agent_command)
cli.add_command(server_command)
cli.add_command(scheduler_command)


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
    except Exception as exc:
        _fail(f"{type(exc).__name__}: {exc}", 1)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
