"""Installations belong to workspaces; held builds have a deadline; one build per pushed commit

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TIME = core.db.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "github_installation_workspaces",
        sa.Column("installation_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("connected_at", _TIME, nullable=False),
        sa.Column("connected_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"]),
        sa.PrimaryKeyConstraint("installation_id", "workspace_id"),
    )
    op.create_index(
        "ix_github_installation_workspaces_workspace_id",
        "github_installation_workspaces",
        ["workspace_id"],
    )
    with op.batch_alter_table("builds") as table:
        table.add_column(sa.Column("held_until", _TIME, nullable=True))
        table.add_column(sa.Column("push_key", sa.String(length=120), nullable=True))
        table.create_unique_constraint("uq_builds_push_key", ["push_key"])


def downgrade() -> None:
    with op.batch_alter_table("builds") as table:
        table.drop_constraint("uq_builds_push_key", type_="unique")
        table.drop_column("push_key")
        table.drop_column("held_until")
    op.drop_index(
        "ix_github_installation_workspaces_workspace_id", "github_installation_workspaces"
    )
    op.drop_table("github_installation_workspaces")
