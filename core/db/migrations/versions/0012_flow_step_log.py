"""Flows: a task's kind, a run's paused attempts, the step log and a failed flow's details

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.models

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TIME = core.db.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("tasks") as table:
        table.add_column(
            sa.Column("kind", sa.String(length=10), nullable=False, server_default="task")
        )
    with op.batch_alter_table("task_runs") as table:
        table.add_column(
            sa.Column("paused_count", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "flow_steps",
        sa.Column("run_id", sa.String(length=40), sa.ForeignKey("task_runs.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("input_hash", sa.String(length=64), nullable=False),
        sa.Column("input_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("flow_attempt", sa.Integer(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Text(), nullable=False),
        sa.Column("wake_at", _TIME, nullable=True),
        sa.Column("child_run_id", sa.String(length=40), nullable=True),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("completed_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("run_id", "seq"),
    )
    op.create_table(
        "flow_errors",
        sa.Column("run_id", sa.String(length=40), sa.ForeignKey("task_runs.id"), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )


def downgrade() -> None:
    op.drop_table("flow_errors")
    op.drop_table("flow_steps")
    with op.batch_alter_table("task_runs") as table:
        table.drop_column("paused_count")
    with op.batch_alter_table("tasks") as table:
        table.drop_column("kind")
