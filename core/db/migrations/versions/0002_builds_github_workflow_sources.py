"""workflows from git: sources, builds, GitHub installations, webhook deliveries

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TIME = core.db.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "github_installations",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("repositories", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("event", sa.String(length=60), nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "builds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workflow_id", sa.String(length=40), nullable=False),
        sa.Column("version_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=True),
        sa.Column("builder", sa.String(length=20), nullable=False),
        sa.Column("log_key", sa.String(length=300), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("check_run_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("started_at", _TIME, nullable=True),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(["version_id"], ["workflow_versions.id"]),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_builds_version_id"), ["version_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_builds_workflow_id"), ["workflow_id"], unique=False)

    with op.batch_alter_table("workflow_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("commit_sha", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("build_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("env", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("image", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("env_vars", sa.Text(), nullable=True))

    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repo_url", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("branch", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("build_command", sa.Text(), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("runtime", sa.String(length=20), server_default="python", nullable=False)
        )
        batch_op.add_column(sa.Column("env_vars", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("installation_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("updated_at", _TIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        for column in (
            "updated_at",
            "installation_id",
            "env_vars",
            "runtime",
            "build_command",
            "branch",
            "repo_url",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("workflow_versions", schema=None) as batch_op:
        for column in ("env_vars", "image", "env", "build_id", "commit_sha"):
            batch_op.drop_column(column)
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_builds_workflow_id"))
        batch_op.drop_index(batch_op.f("ix_builds_version_id"))
    op.drop_table("builds")
    op.drop_table("webhook_deliveries")
    op.drop_table("github_installations")
