"""cron schedules of tasks

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TIME = core.db.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("workflow_id", sa.String(length=40), nullable=False),
        sa.Column("task_name", sa.String(length=200), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=False),
        sa.Column("next_fire_at", _TIME, nullable=False),
        sa.Column("last_fired_at", _TIME, nullable=True),
        sa.Column("last_run_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow_id", "task_name"),
    )
    op.create_index("ix_schedules_next_fire_at", "schedules", ["next_fire_at"])


def downgrade() -> None:
    op.drop_index("ix_schedules_next_fire_at", table_name="schedules")
    op.drop_table("schedules")
