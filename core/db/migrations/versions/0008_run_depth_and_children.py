"""task runs: their depth in their tree and how many children they started (for the caps);
whether they are roots, and an index in admission order

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("depth", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("child_count", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_root", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.execute("UPDATE task_runs SET is_root = (parent_id IS NULL)")
    op.create_index(
        "ix_task_runs_admission",
        "task_runs",
        ["workspace_id", "status", "is_root", "root_id", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_task_runs_admission", table_name="task_runs")
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.drop_column("is_root")
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.drop_column("child_count")
        batch_op.drop_column("depth")
