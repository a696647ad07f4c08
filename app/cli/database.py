"""Operator commands that work on the database directly, never over HTTP (keys, limits)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from sqlalchemy.engine import make_url

from app.cli.config import build_settings
from app.cli.errors import CliError
from core.audit import Actor
from core.errors import ServiceError
from core.settings import Settings
from core.workspaces import Workspaces
from scheduler.runtime import DEFAULT_WORKSPACE_ID, NOTHING, Runtime

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


def missing_database(settings: Settings) -> str | None:
    """Why these commands must not open the database: a SQLite file that does not exist.

    Opening it would create an empty database (and its folder) that no server reads, and the
    change would look done. PostgreSQL and other servers are left to answer for themselves.
    """
    if settings.database.url is None:
        folder = settings.data_dir.resolve()
        if (folder / "conveyor.db").is_file():
            return None
        return (
            f"no Conveyor database in {folder}: run this where the server keeps its data, or "
            "point at it with --data-dir (CONVEYOR_DATA_DIR) or CONVEYOR_DATABASE__URL"
        )
    url = make_url(settings.database.url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database).resolve()
    if path.is_file():
        return None
    return (
        f"no Conveyor database at {path} (CONVEYOR_DATABASE__URL): run this where the server "
        "keeps its data, or correct the setting"
    )


def on_database(data_dir: Path | None, work: Callable[[Runtime], Awaitable[T]]) -> T:
    settings = build_settings(data_dir=data_dir)
    problem = missing_database(settings)
    if problem is not None:
        raise CliError(problem)

    async def run() -> T:
        runtime = await Runtime.open(settings, work=NOTHING)
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
