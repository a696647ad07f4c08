"""`conveyor github connect|disconnect|list`: which workspaces own which App installations.

On the database directly, for operators: an installation made before its workspace asked for an
install link (or one that several workspaces share) is connected here. A push builds only the
workflows of the workspaces that own its installation.
"""

from __future__ import annotations

from pathlib import Path

import click

from app.api.github_installations import connection_json
from app.cli import output
from app.cli.database import CLI, data_dir_option, on_database, workspace_option
from app.github.installations import InstallationOwners
from core.audit import AuditLog
from scheduler.runtime import Runtime

_INSTALLATION = click.argument("installation_id", type=click.IntRange(1, 2**63 - 1))


@click.group("github")
def github_group() -> None:
    """GitHub App installations and their workspaces."""


@github_group.command("connect")
@_INSTALLATION
@workspace_option
@data_dir_option
def connect_command(installation_id: int, workspace: str, data_dir: Path | None) -> None:
    """Make the workspace own INSTALLATION_ID: its pushes build the workspace's workflows."""

    async def connect(runtime: Runtime) -> None:
        owners = InstallationOwners(runtime.store.sessions)
        await owners.connect(installation_id, workspace, by=CLI.name, exclusive=False)
        await AuditLog(runtime.store.sessions).record(
            workspace, CLI, "installation.connected", str(installation_id), {"by": "cli"}
        )

    on_database(data_dir, connect)
    click.echo(f"installation {installation_id} connected to workspace {workspace}")


@github_group.command("disconnect")
@_INSTALLATION
@workspace_option
@data_dir_option
def disconnect_command(installation_id: int, workspace: str, data_dir: Path | None) -> None:
    """The workspace no longer owns INSTALLATION_ID (its workflows stop using its token)."""

    async def disconnect(runtime: Runtime) -> None:
        await InstallationOwners(runtime.store.sessions).disconnect(installation_id, workspace)
        await AuditLog(runtime.store.sessions).record(
            workspace, CLI, "installation.disconnected", str(installation_id), {"by": "cli"}
        )

    on_database(data_dir, disconnect)
    click.echo(f"installation {installation_id} disconnected from workspace {workspace}")


@github_group.command("list")
@workspace_option
@data_dir_option
def list_command(workspace: str, data_dir: Path | None) -> None:
    """The workspace's installations as JSON."""

    async def connections(runtime: Runtime) -> list[dict[str, object]]:
        found = await InstallationOwners(runtime.store.sessions).connections(workspace)
        return [connection_json(c) for c in found]

    click.echo(output.to_json(on_database(data_dir, connections), indent=2))
