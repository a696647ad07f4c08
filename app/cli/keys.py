"""`conveyor keys create`: works on the database directly, never over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from app.cli.config import build_settings
from core.auth import CreatedKey
from core.settings import Settings
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime


@click.group("keys")
def keys_group() -> None:
    """Manage API keys (on the local database)."""


@keys_group.command("create")
@click.option("--name", default="cli", show_default=True, help="A label for the key.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The server's data directory (default: CONVEYOR_DATA_DIR or .conveyor).",
)
def create_command(name: str, data_dir: Path | None) -> None:
    """Create a key for the default workspace; the secret is printed once."""
    created = asyncio.run(_create(build_settings(data_dir=data_dir), name))
    click.echo(created.secret)
    click.echo(
        f"created key {created.id} ({created.name}); the secret above is shown only once", err=True
    )


async def _create(settings: Settings, name: str) -> CreatedKey:
    runtime = await Runtime.open(settings)
    try:
        return await runtime.keys.create(DEFAULT_WORKSPACE_ID, name)
    finally:
        await runtime.close()
