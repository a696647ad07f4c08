"""`conveyor flows`: rerun a failed flow run from its failed step."""

from __future__ import annotations

import click

from app.cli.context import client_of
from app.cli.errors import CliError
from app.cli.runs import report_final, wait_for


@click.group("flows")
def flows_group() -> None:
    """Flow runs (`conveyor run workflow/flow ARGS --wait` starts one)."""


@flows_group.command("rerun")
@click.argument("flow_run_id")
@click.option("--wait", is_flag=True, help="Wait for the run to end and print its result.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds to wait.")
@click.pass_context
def rerun_command(ctx: click.Context, flow_run_id: str, wait: bool, timeout: float | None) -> None:
    """Continue a failed flow run in a new attempt: the steps that succeeded are replayed, the
    failed one runs again."""
    if not flow_run_id.startswith("frn-"):
        raise CliError(f"{flow_run_id!r} is not a flow run id (frn-…)")
    client = client_of(ctx)
    client.rerun_flow(flow_run_id)
    click.echo(f"{flow_run_id} rerun from its failed step", err=True)
    if not wait:
        return
    # a flow run is the task run of the same id under the lifecycle's prefix
    run_id = f"trn-{flow_run_id[4:]}"
    report_final(wait_for(client, client.get(run_id), timeout))
