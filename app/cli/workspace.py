"""`conveyor workspace show|set`: a workspace's limits, on the database directly.

A workspace's concurrency limit is data: a process's `--max-concurrency` or setting only seeds
a workspace that has none. Change it here (or with `PATCH /v1/workspaces/{id}`).
"""

from __future__ import annotations

from pathlib import Path

import click

from app.api.accounts import workspace_json
from app.cli import output
from app.cli.database import CLI, data_dir_option, on_database, workspace_option
from core.audit import AuditLog
from core.workspaces import Workspaces
from scheduler.runtime import Runtime


@click.group("workspace")
def workspace_group() -> None:
    """A workspace's limits."""


@workspace_group.command("show")
@workspace_option
@data_dir_option
def show_command(workspace: str, data_dir: Path | None) -> None:
    """Print the workspace (its id, name and concurrency limit) as JSON."""

    async def show(runtime: Runtime) -> dict[str, object]:
        found = await Workspaces(runtime.store.sessions).get(workspace)
        assert found is not None  # on_database checked that it exists
        return workspace_json(found)

    click.echo(output.to_json(on_database(data_dir, show), indent=2))


@workspace_group.command("set")
@click.option(
    "--max-concurrency",
    type=click.IntRange(1, 10_000),
    required=True,
    help="Attempts active at once in the workspace (waiting parents not counted).",
)
@workspace_option
@data_dir_option
def set_command(max_concurrency: int, workspace: str, data_dir: Path | None) -> None:
    """Change the workspace's concurrency limit; running schedulers follow it at once."""

    async def change(runtime: Runtime) -> None:
        await runtime.service.set_max_concurrency(workspace, max_concurrency)
        details = {"maxConcurrency": max_concurrency}
        await AuditLog(runtime.store.sessions).record(
            workspace, CLI, "workspace.changed", workspace, details
        )

    on_database(data_dir, change)
    click.echo(f"workspace {workspace}: max concurrency {max_concurrency}")
