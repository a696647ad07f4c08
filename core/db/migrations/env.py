"""Alembic environment: runs on the connection handed over by `core.db.engine.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from core.db.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through core.db.engine.migrate")
_run(connection)
