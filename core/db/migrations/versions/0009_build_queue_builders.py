"""Builds as a queue that `conveyor builder` processes claim; the builders themselves

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TIME = core.db.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("builds") as table:
        table.add_column(sa.Column("builder_id", sa.String(length=40), nullable=True))
        table.add_column(sa.Column("claimed_at", _TIME, nullable=True))
        table.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        table.add_column(sa.Column("takeovers", sa.Integer(), server_default="0", nullable=False))
    op.create_index("ix_builds_builder_id", "builds", ["builder_id"])
    op.create_index("ix_builds_queue", "builds", ["status", "created_at"])
    op.create_table(
        "builders",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("heartbeat_at", _TIME, nullable=False),
        sa.Column("stopped_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("builders")
    op.drop_index("ix_builds_queue", table_name="builds")
    op.drop_index("ix_builds_builder_id", table_name="builds")
    with op.batch_alter_table("builds") as table:
        table.drop_column("takeovers")
        table.drop_column("attempts")
        table.drop_column("claimed_at")
        table.drop_column("builder_id")
