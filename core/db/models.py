"""SQLAlchemy models; the schema itself is created by the Alembic migrations beside this file."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import true as sa_true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import DateTime, TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    max_concurrency: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(20))
    secret_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # space-separated; "admin" may manage workspaces and every workspace's keys
    scopes: Mapped[str] = mapped_column(String(100), default="", server_default="")


class AuditEvent(Base):
    """Who changed a key, a workflow or a workspace, what and when (never a secret's value)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_listing", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # `key:<id>` with the key's prefix beside it, or `anonymous` (conveyor dev), `cli`, `github`
    actor: Mapped[str] = mapped_column(String(60))
    actor_prefix: Mapped[str | None] = mapped_column(String(20), nullable=True)
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(200))
    details: Mapped[str] = mapped_column(Text)  # JSON object


class Workflow(Base):
    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("workspace_id", "slug"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    slug: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    start_command: Mapped[str] = mapped_column(Text)
    root_dir: Mapped[str] = mapped_column(Text)
    active_version_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Where versions come from (None for folders registered directly, as `conveyor dev` does).
    repo_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    branch: Mapped[str | None] = mapped_column(String(255), nullable=True)
    build_command: Mapped[str] = mapped_column(Text, default="", server_default="")
    runtime: Mapped[str] = mapped_column(String(20), default="python", server_default="python")
    env_vars: Mapped[str | None] = mapped_column(Text, nullable=True)  # SecretBox token
    installation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WorkflowVersion(Base):
    __tablename__ = "workflow_versions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id"), index=True)
    status: Mapped[str] = mapped_column(String(30))
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    root_dir: Mapped[str] = mapped_column(Text)
    start_command: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    commit_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    build_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    env: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: the built environment
    image: Mapped[str | None] = mapped_column(Text, nullable=True)  # image builds: its reference
    env_vars: Mapped[str | None] = mapped_column(Text, nullable=True)  # SecretBox token
    # sha256 of the source, the environment and the registered tasks: an unchanged restart of
    # `conveyor dev` keeps this version instead of making another
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Build(Base):
    __tablename__ = "builds"
    __table_args__ = (
        Index("ix_builds_queue", "status", "created_at"),
        UniqueConstraint("push_key", name="uq_builds_push_key"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id"), index=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("workflow_versions.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(20))
    commit_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    builder: Mapped[str] = mapped_column(String(20))
    log_key: Mapped[str] = mapped_column(String(300))
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    check_run_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # the `conveyor builder` process running it (or that ran it); None: built in-process
    builder_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # claims
    takeovers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # recorded but not yet announced (its check run): a builder releases it after this time
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # `<workflow id>@<commit>` for builds a push started: one per commit, whatever the delivery
    push_key: Mapped[str | None] = mapped_column(String(120), nullable=True)


class BuilderProcess(Base):
    """A `conveyor builder`; one whose heartbeat stopped leaves its build to another."""

    __tablename__ = "builders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class GitHubInstallation(Base):
    __tablename__ = "github_installations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    account: Mapped[str] = mapped_column(String(200))
    repositories: Mapped[str] = mapped_column(Text)  # JSON list of "owner/name"
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GitHubInstallationWorkspace(Base):
    """A workspace that owns a GitHub App installation: its pushes build that workspace's
    workflows, and its token fetches their repositories."""

    __tablename__ = "github_installation_workspaces"

    installation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id"), primary_key=True, index=True
    )
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    connected_by: Mapped[str] = mapped_column(String(100))  # "setup", "api:<key id>", "cli"


class WebhookDelivery(Base):
    """Each `X-GitHub-Delivery` once: GitHub redelivers, and replays must do nothing."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    event: Mapped[str] = mapped_column(String(60))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("version_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("workflow_versions.id"))
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    options: Mapped[str] = mapped_column(Text)  # JSON
    parameters: Mapped[str] = mapped_column(Text)  # JSON
    description: Mapped[str | None] = mapped_column(Text, nullable=True)  # the docstring
    # "python" or "typescript": the SDK that registered it (its User-Agent); None before 0010
    language: Mapped[str | None] = mapped_column(String(20), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # "task", or "flow": a function of checkpointed steps (scheduler/flows)
    kind: Mapped[str] = mapped_column(String(10), default="task", server_default="task")


class TaskRun(Base):
    __tablename__ = "task_runs"
    __table_args__ = (
        UniqueConstraint("idempotency_scope", "idempotency_key"),
        Index("ix_task_runs_queue", "status", "not_before"),
        Index("ix_task_runs_listing", "workspace_id", "id"),
        # pending runs in admission order (children of running trees, then oldest tree first):
        # an admission pass reads the next few, however long the queue
        Index("ix_task_runs_admission", "workspace_id", "status", "is_root", "root_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"))
    task_name: Mapped[str] = mapped_column(String(200), index=True)
    workflow_id: Mapped[str] = mapped_column(String(40), index=True)
    workflow_slug: Mapped[str] = mapped_column(String(100))
    version_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    parent_attempt: Mapped[int | None] = mapped_column(Integer, nullable=True)
    root_id: Mapped[str] = mapped_column(String(40), index=True)
    awaited: Mapped[bool] = mapped_column(Boolean, default=False)
    input_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    input_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    output_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    output_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    stack_trace: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    lost_count: Mapped[int] = mapped_column(Integer, default=0)
    # a flow's attempts that ended in a durable sleep: they spend no retries
    paused_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    depth: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # root: 0
    # parent_id IS NULL, kept as a column so that admission's order has a plain index
    is_root: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    child_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    idempotency_scope: Mapped[str | None] = mapped_column(String(60), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (
        Index("ix_attempts_run", "run_id"),
        UniqueConstraint("run_id", "number"),
        Index("ix_attempts_state", "state"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("task_runs.id"))
    workspace_id: Mapped[str] = mapped_column(String(40))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str | None] = mapped_column(String(30), nullable=True)
    waiting: Mapped[bool] = mapped_column(Boolean, default=False)
    # why a started attempt's instance is not running yet (e.g. the cluster has no capacity)
    waiting_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    executor: Mapped[str] = mapped_column(String(20))
    # the scheduler process that started it and watches it (see SchedulerProcess)
    scheduler_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    handle: Mapped[str | None] = mapped_column(Text, nullable=True)  # executor's JSON
    plan: Mapped[str] = mapped_column(String(30))
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    stack_trace: Mapped[str | None] = mapped_column(Text, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    log_key: Mapped[str] = mapped_column(String(300))
    compute_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)


class AttemptEvent(Base):
    """The attempt's slot history (started, waiting, resumed, ended), in the order it happened."""

    __tablename__ = "attempt_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), index=True)
    workspace_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class SchedulerProcess(Base):
    """A scheduler process; one whose heartbeat stopped left its attempts to be reconciled."""

    __tablename__ = "schedulers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Schedule(Base):
    """A task's cron schedule in its workflow's active version, and when it fires next."""

    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("workflow_id", "task_name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(40))
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id"))
    task_name: Mapped[str] = mapped_column(String(200))
    cron: Mapped[str] = mapped_column(String(200))
    next_fire_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FlowStep(Base):
    """One step of a flow run, by `seq`: what a new attempt of the flow replays."""

    __tablename__ = "flow_steps"

    run_id: Mapped[str] = mapped_column(ForeignKey("task_runs.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(10))  # inline, detached, sleep
    name: Mapped[str] = mapped_column(String(200))
    input_hash: Mapped[str] = mapped_column(String(64))
    # a payload is inline (`*_json`) up to the blob store's `inline_bytes`, else in a blob (`*_key`)
    input_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    input_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # running, succeeded, failed
    flow_attempt: Mapped[int] = mapped_column(Integer)  # the flow attempt that started it
    result_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # the JSON characters of its input and result wherever they are: the history limit's measure
    payload_chars: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[str] = mapped_column(Text, default="[]")  # JSON: an inline step's failures
    wake_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    child_run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class FlowError(Base):
    """Why a flow run failed, as Render's `errorDetails` (a determinism error, a limit)."""

    __tablename__ = "flow_errors"

    run_id: Mapped[str] = mapped_column(ForeignKey("task_runs.id"), primary_key=True)
    details: Mapped[str] = mapped_column(Text)  # JSON object
