"""`conveyor migrate`: bring the database's schema to the newest revision, then exit.

Every process also migrates as it starts (under PostgreSQL's advisory lock, so any number may
start at once); this is for operators who prefer an explicit step before a roll-out.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from app.cli.config import build_settings
from app.cli.database import data_dir_option
from core.data_dir import prepare_data_dir
from core.db.engine import create_engine, migrate


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _migrate(url: str) -> tuple[str | None, str | None]:
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            before = await connection.run_sync(_revision)
        await migrate(engine)
        async with engine.connect() as connection:
            after = await connection.run_sync(_revision)
        return before, after
    finally:
        await engine.dispose()


@click.command("migrate")
@data_dir_option
def migrate_command(data_dir: Path | None) -> None:
    """Upgrade the database (CONVEYOR_DATABASE__URL, or the data dir's SQLite) to the newest
    schema."""
    settings = build_settings(data_dir=data_dir)
    prepare_data_dir(settings)  # a SQLite database made here is private from its first byte
    before, after = asyncio.run(_migrate(settings.database_url))
    if before == after:
        click.echo(f"the schema is at revision {after} already")
    else:
        click.echo(f"migrated the schema from revision {before or 'none'} to {after}")
