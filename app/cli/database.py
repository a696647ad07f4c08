"""Operator commands that work on the database directly, never over HTTP (keys, limits)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from app.cli.config import build_settings
from app.cli.errors import CliError
from core.audit import Actor
from core.errors import ServiceError
from core.workspaces import Workspaces
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime

T = TypeVar("T")
CLI = Actor("cli")  # who the audit trail says made a change

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The server's data directory (default: CONVEYOR_DATA_DIR or .conveyor).",
)
workspace_option = click.option(
    "--workspace",
    default=DEFAULT_WORKSPACE_ID,
    show_default=True,
    help="The workspace to work on.",
)


def on_database(data_dir: Path | None, work: Callable[[Runtime], Awaitable[T]]) -> T:
    async def run() -> T:
        runtime = await Runtime.open(build_settings(data_dir=data_dir))
        try:
            if not await Workspaces(runtime.store.sessions).exists(workspace_id):
                raise CliError(f"workspace {workspace_id!r} not found")
            return await work(runtime)
        except ServiceError as exc:
            raise CliError(exc.message) from None
        finally:
            await runtime.close()

    workspace_id = click.get_current_context().params.get("workspace", DEFAULT_WORKSPACE_ID)
    return asyncio.run(run())
