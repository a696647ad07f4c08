"""`conveyor run`, `conveyor runs …` and `conveyor tasks`: client commands over REST v1."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from app.cli import output
from app.cli.api_client import ApiClient, Obj
from app.cli.args import run_input, typed_args
from app.cli.context import client_of
from app.cli.errors import CliError

TERMINAL = frozenset({"succeeded", "failed", "canceled", "completed"})
STATUSES = ["pending", "running", "succeeded", "failed", "canceled"]
POLL_SECONDS = 30.0


@click.command("run")
@click.argument("task")
@click.argument("args", nargs=-1)
@click.option("--input", "input_json", help="The whole input as JSON (array or object).")
@click.option(
    "--input-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the whole JSON input from a file.",
)
@click.option("--wait", is_flag=True, help="Wait for the run to end and print its result.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="With --wait: give up after this many seconds.",
)
@click.pass_context
def run_command(
    ctx: click.Context,
    task: str,
    args: tuple[str, ...],
    input_json: str | None,
    input_file: Path | None,
    wait: bool,
    timeout: float | None,
) -> None:
    """Start TASK (`workflow/task`) with ARGS, each read by its parameter's type.

    An argument for a `str` parameter is taken as text; others are JSON (`3`, `[1, 2]`,
    `{"a": 1}`, `null`). Tasks of Render's SDK register no types: their arguments are JSON
    when they parse, text otherwise.
    """
    payload = run_input(args, input_json, input_file)
    client = client_of(ctx)
    if args:
        payload = typed_args(args, client.task(task).get("parameters") or [])
    run = client.start(task, payload)
    if not wait:
        click.echo(run["id"])
        return
    final = wait_for(client, run, timeout)
    report_final(final)


def wait_for(client: ApiClient, run: Obj, timeout: float | None) -> Obj:
    """Poll with long waits until terminal, telling stderr about every status change."""
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = ""
    while True:
        state = progress_line(run)
        if state != seen:
            click.echo(state, err=True)
            seen = state
        if run["status"] in TERMINAL:
            return run
        left = POLL_SECONDS if deadline is None else deadline - time.monotonic()
        if left <= 0:
            raise CliError(
                f"timed out after {timeout:g}s waiting for {run['id']} (still {run['status']})"
            )
        run = client.get(run["id"], wait=min(left, POLL_SECONDS))


def progress_line(run: Obj) -> str:
    attempts = run.get("attempts") or []
    line = f"{run['id']} {run['status']}"
    if run["status"] == "running" and attempts:
        line += f" (attempt #{attempts[-1]['attempt']})"
        if run.get("waiting"):
            line += ", waiting on children"
    elif run["status"] == "pending" and attempts:
        line += f" (retry after attempt #{attempts[-1]['attempt']})"
    return line


def report_final(run: Obj) -> None:
    if run["status"] in ("succeeded", "completed"):
        click.echo(output.to_json(output.result_value(run)))
        return
    if run["status"] == "canceled":
        raise CliError(f"run {run['id']} was canceled")
    raise CliError(f"run {run['id']} failed: {run.get('error') or 'no error message'}")


@click.group("runs")
def runs_group() -> None:
    """List, inspect and cancel task runs."""


@runs_group.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES))
@click.option("--task", help="Only runs of this task (`workflow/task`).")
@click.option("--root", help="Only runs under this root run id.")
@click.option("--roots-only", is_flag=True, help="Only root runs (started by a client).")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@click.pass_context
def list_command(
    ctx: click.Context,
    statuses: tuple[str, ...],
    task: str | None,
    root: str | None,
    roots_only: bool,
    limit: int,
    as_json: bool,
) -> None:
    """The newest runs first."""
    params: dict[str, Any] = {"limit": limit}
    if statuses:
        params["status"] = ",".join(statuses)
    if task:
        params["taskSlug"] = task
    if root:
        params["rootTaskRunId"] = root
    if roots_only:
        params["rootsOnly"] = "true"
    items = [item["taskRun"] for item in client_of(ctx).list_runs(params)]
    click.echo(output.to_json(items, indent=2) if as_json else output.runs_table(items))


@runs_group.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@click.pass_context
def show_command(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """A run's details: attempts, error, result."""
    run = client_of(ctx).get(run_id)
    click.echo(output.to_json(run, indent=2) if as_json else output.run_details(run))


@runs_group.command("cancel")
@click.argument("run_id")
@click.pass_context
def cancel_command(ctx: click.Context, run_id: str) -> None:
    """Cancel a run and every unfinished run under it."""
    client = client_of(ctx)
    before = client.get(run_id)
    if before["status"] in TERMINAL:
        click.echo(f"{run_id} had already ended ({before['status']}): nothing to cancel", err=True)
        return
    client.cancel(run_id)
    click.echo(f"{run_id} cancel requested", err=True)


@runs_group.command("logs")
@click.argument("run_id")
@click.option("--attempt", type=click.IntRange(min=0), help="0-indexed; the latest by default.")
@click.option("--follow", "-f", is_flag=True, help="Keep streaming until the attempt ends.")
@click.pass_context
def logs_command(ctx: click.Context, run_id: str, attempt: int | None, follow: bool) -> None:
    """An attempt's captured stdout and stderr."""
    out = sys.stdout.buffer
    for chunk in client_of(ctx).logs(run_id, attempt, follow):
        out.write(chunk)
        out.flush()


@click.group("tasks", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@click.pass_context
def tasks_group(ctx: click.Context, as_json: bool) -> None:
    """Tasks of every workflow's active version (`conveyor tasks` lists them too)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(tasks_list_command, as_json=as_json)


@tasks_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@click.pass_context
def tasks_list_command(ctx: click.Context, as_json: bool) -> None:
    """Tasks of every workflow's active version."""
    items = client_of(ctx).tasks()
    click.echo(output.to_json(items, indent=2) if as_json else output.tasks_table(items))


@tasks_group.command("show")
@click.argument("task")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@click.pass_context
def tasks_show_command(ctx: click.Context, task: str, as_json: bool) -> None:
    """A task's description, parameters and options (TASK is `workflow/task`)."""
    item = client_of(ctx).task(task)
    click.echo(output.to_json(item, indent=2) if as_json else output.task_details(item))
