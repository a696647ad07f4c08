"""Engine and session factory for SQLite (WAL) and PostgreSQL; migrations to head on open.

On PostgreSQL the upgrade runs under a transaction-scoped advisory lock: any number of
processes may start at once on a fresh database; the first migrates, the others wait for it
and then find the schema at head.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock's key for schema upgrades (any fixed 64-bit number; this one spells
# "conveyor" in ASCII, so it is recognisable in pg_locks)
MIGRATION_LOCK_KEY = 0x636F6E7665796F72


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(
    url: str, *, echo: bool = False, pool_size: int = 20, max_overflow: int = 20
) -> AsyncEngine:
    """An async engine; SQLite gets WAL and a busy timeout so readers never block the writer."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo)
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    return create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=max_overflow)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url)
    return config


def _upgrade_sync(connection: Any, url: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    url = engine.url.render_as_string(hide_password=False)
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # held until this transaction (the whole upgrade) commits or rolls back
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        await connection.run_sync(_upgrade_sync, url)


def migrate_blocking(engine: AsyncEngine) -> None:
    asyncio.run(migrate(engine))
