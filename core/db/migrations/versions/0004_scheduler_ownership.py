"""scheduler ownership of attempts, scheduler heartbeats

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TIME = core.db.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedulers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("heartbeat_at", _TIME, nullable=False),
        sa.Column("stopped_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("scheduler_id", sa.String(length=40), nullable=True))
        batch.create_index("ix_attempts_scheduler_id", ["scheduler_id"])


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_index("ix_attempts_scheduler_id")
        batch.drop_column("scheduler_id")
    op.drop_table("schedulers")
