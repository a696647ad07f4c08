"""A fresh PostgreSQL database per Conveyor start, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

ADMIN_DSN = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass(frozen=True)
class Database:
    name: str

    @property
    def dsn(self) -> str:
        """For asyncpg."""
        return ADMIN_DSN.rsplit("/", 1)[0] + f"/{self.name}"

    @property
    def url(self) -> str:
        """For Conveyor (`CONVEYOR_DATABASE__URL`, SQLAlchemy)."""
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def server_version() -> str | None:
    """PostgreSQL's version, or None when it does not answer."""
    try:
        connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


@asynccontextmanager
async def fresh_database() -> AsyncIterator[Database]:
    database = Database(f"conveyor_bench_{uuid.uuid4().hex[:12]}")
    await _admin(f'CREATE DATABASE "{database.name}"')
    try:
        yield database
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
