"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("max_concurrency", sa.Integer(), nullable=False),
        sa.Column("created_at", core.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=20), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.Column("created_at", core.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", core.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_hash"),
    )
    op.create_table(
        "workflows",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("start_command", sa.Text(), nullable=False),
        sa.Column("root_dir", sa.Text(), nullable=False),
        sa.Column("active_version_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", core.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "slug"),
    )
    op.create_table(
        "workflow_versions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workflow_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("root_dir", sa.Text(), nullable=False),
        sa.Column("start_command", sa.Text(), nullable=False),
        sa.Column("created_at", core.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("workflow_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workflow_versions_workflow_id"), ["workflow_id"], unique=False
        )

    op.create_table(
        "tasks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("version_id", sa.String(length=40), nullable=False),
        sa.Column("workflow_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("created_at", core.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["workflow_versions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version_id", "name"),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_workflow_id"), ["workflow_id"], unique=False)

    op.create_table(
        "task_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("task_id", sa.String(length=40), nullable=False),
        sa.Column("task_name", sa.String(length=200), nullable=False),
        sa.Column("workflow_id", sa.String(length=40), nullable=False),
        sa.Column("workflow_slug", sa.String(length=100), nullable=False),
        sa.Column("version_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("parent_id", sa.String(length=40), nullable=True),
        sa.Column("parent_attempt", sa.Integer(), nullable=True),
        sa.Column("root_id", sa.String(length=40), nullable=False),
        sa.Column("awaited", sa.Boolean(), nullable=False),
        sa.Column("input_json", sa.Text(), nullable=True),
        sa.Column("input_key", sa.String(length=300), nullable=True),
        sa.Column("output_json", sa.Text(), nullable=True),
        sa.Column("output_key", sa.String(length=300), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("stack_trace", sa.Text(), nullable=True),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("lost_count", sa.Integer(), nullable=False),
        sa.Column("not_before", core.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("idempotency_scope", sa.String(length=60), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", core.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", core.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", core.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_scope", "idempotency_key"),
    )
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.create_index("ix_task_runs_listing", ["workspace_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_runs_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index("ix_task_runs_queue", ["status", "not_before"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_runs_root_id"), ["root_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_runs_task_name"), ["task_name"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_runs_workflow_id"), ["workflow_id"], unique=False)

    op.create_table(
        "attempts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=30), nullable=True),
        sa.Column("waiting", sa.Boolean(), nullable=False),
        sa.Column("executor", sa.String(length=20), nullable=False),
        sa.Column("handle", sa.Text(), nullable=True),
        sa.Column("plan", sa.String(length=30), nullable=False),
        sa.Column("enqueued_at", core.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", core.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", core.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("stack_trace", sa.Text(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("log_key", sa.String(length=300), nullable=False),
        sa.Column("compute_seconds", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["task_runs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "number"),
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index("ix_attempts_run", ["run_id"], unique=False)
        batch_op.create_index("ix_attempts_state", ["state"], unique=False)

    op.create_table(
        "attempt_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("attempt_id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("at", core.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("attempt_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attempt_events_attempt_id"), ["attempt_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("attempt_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attempt_events_attempt_id"))

    op.drop_table("attempt_events")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_state")
        batch_op.drop_index("ix_attempts_run")

    op.drop_table("attempts")
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_runs_workflow_id"))
        batch_op.drop_index(batch_op.f("ix_task_runs_task_name"))
        batch_op.drop_index(batch_op.f("ix_task_runs_root_id"))
        batch_op.drop_index("ix_task_runs_queue")
        batch_op.drop_index(batch_op.f("ix_task_runs_parent_id"))
        batch_op.drop_index("ix_task_runs_listing")

    op.drop_table("task_runs")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_workflow_id"))

    op.drop_table("tasks")
    with op.batch_alter_table("workflow_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_versions_workflow_id"))

    op.drop_table("workflow_versions")
    op.drop_table("workflows")
    op.drop_table("api_keys")
    op.drop_table("workspaces")
