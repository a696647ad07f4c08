"""API key expiry, last use and scopes; the audit trail

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TIME = core.db.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as table:
        table.add_column(sa.Column("expires_at", _TIME, nullable=True))
        table.add_column(sa.Column("last_used_at", _TIME, nullable=True))
        table.add_column(
            sa.Column("scopes", sa.String(length=100), server_default="", nullable=False)
        )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.Column("actor_prefix", sa.String(length=20), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_events_listing", "audit_events", ["workspace_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_listing", table_name="audit_events")
    op.drop_table("audit_events")
    with op.batch_alter_table("api_keys") as table:
        table.drop_column("scopes")
        table.drop_column("last_used_at")
        table.drop_column("expires_at")
