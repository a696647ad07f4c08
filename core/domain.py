"""Domain values shared by the scheduler, the API and the dashboard."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")

JSON = Any


class RunStatus(StrEnum):
    """A task run's status, in the API's vocabulary."""

    PENDING = "pending"  # waiting for admission, or for its retry's backoff to pass
    RUNNING = "running"  # an attempt is starting or running (possibly waiting on children)
    SUCCEEDED = "succeeded"  # an attempt returned a result
    FAILED = "failed"  # the last attempt failed and no retry is left
    CANCELED = "canceled"  # cancelled by a user or by its parent's end

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED})


class AttemptState(StrEnum):
    """Where an attempt's instance is in its life."""

    STARTING = "starting"  # the executor was asked to start it
    RUNNING = "running"  # the instance asked for its input
    ENDED = "ended"  # an outcome is recorded


class AttemptOutcome(StrEnum):
    """How an attempt ended."""

    OK = "ok"  # the callback carried a result
    ERROR = "error"  # the callback carried an error (or the output was unusable)
    TIMEOUT = "timeout"  # killed at the task's timeout
    LOST = "lost"  # the instance vanished (e.g. with the control plane)
    CANCELED = "canceled"  # killed because the run was cancelled
    EXITED_WITHOUT_RESULT = "exited_without_result"  # the process ended with no callback
    OUT_OF_MEMORY = "out_of_memory"  # killed for exceeding the plan's memory
    PAUSED = "paused"  # a flow's durable sleep ended it: a new attempt resumes at wake time


class VersionStatus(StrEnum):
    """A workflow version's life."""

    CREATED = "created"  # recorded, nothing built yet
    BUILDING = "building"  # the build runs
    REGISTERING = "registering"  # the start command runs in register mode
    READY = "ready"  # tasks registered; may serve runs
    BUILD_FAILED = "build_failed"  # the build failed
    REGISTRATION_FAILED = "registration_failed"  # the register step failed or was invalid


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    wait_duration_ms: int
    factor: float

    def delay_seconds(self, retry_number: int) -> float:
        """Backoff before retry number `retry_number` (1 for the first retry)."""
        return self.wait_duration_ms / 1000 * self.factor ** max(retry_number - 1, 0)


@dataclass(frozen=True)
class TaskOptions:
    retry: RetryPolicy | None = None
    timeout_seconds: int | None = None
    plan: str | None = None
    schedule: str | None = None
    concurrency: int | None = None


@dataclass(frozen=True)
class TaskParameter:
    name: str
    type: str | None
    has_default: bool
    default_value: str | None  # JSON text, as the SDKs send it
    # JSON Schema of the values it takes, from Conveyor's SDK; None from Render's
    schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class TaskSpec:
    """A task as a worker registers it."""

    name: str
    options: TaskOptions = field(default_factory=TaskOptions)
    parameters: tuple[TaskParameter, ...] = ()
    description: str | None = None  # the function's docstring (Conveyor's SDK)
    language: str | None = None  # "python" | "typescript": the registering SDK's language
    kind: str = "task"  # or "flow": a function of checkpointed steps


@dataclass(frozen=True)
class TaskInfo:
    id: str
    name: str
    workflow_id: str
    workflow_slug: str
    version_id: str
    created_at: datetime
    options: TaskOptions
    parameters: tuple[TaskParameter, ...]
    description: str | None = None
    language: str | None = None  # "python" | "typescript"; None if registered before it was kept
    kind: str = "task"  # or "flow"

    @property
    def slug(self) -> str:
        return f"{self.workflow_slug}/{self.name}"


@dataclass(frozen=True)
class AttemptInfo:
    number: int
    state: AttemptState
    outcome: AttemptOutcome | None
    enqueued_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    waiting: bool
    error: str | None
    stack_trace: str | None
    compute_seconds: float | None
    cost_usd: float | None
    exit_code: int | None
    waiting_reason: str | None = None  # why its instance is not running yet (e.g. no capacity)

    @property
    def status(self) -> RunStatus:
        """The attempt's status in the API's vocabulary."""
        if self.outcome is None:
            return RunStatus.RUNNING
        if self.outcome in (AttemptOutcome.OK, AttemptOutcome.PAUSED):
            return RunStatus.SUCCEEDED
        if self.outcome is AttemptOutcome.CANCELED:
            return RunStatus.CANCELED
        return RunStatus.FAILED


@dataclass(frozen=True)
class RunInfo:
    id: str
    workspace_id: str
    task_id: str
    task_name: str
    workflow_id: str
    workflow_slug: str
    version_id: str
    status: RunStatus
    waiting: bool
    parent_id: str | None
    parent_attempt: int | None
    root_id: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    not_before: datetime | None
    attempts: tuple[AttemptInfo, ...]
    input: JSON
    results: list[JSON] | None
    error: str | None
    stack_trace: str | None

    @property
    def task_slug(self) -> str:
        return f"{self.workflow_slug}/{self.task_name}"

    @property
    def retries(self) -> int:
        return max(len([a for a in self.attempts if a.started_at is not None]) - 1, 0)


@dataclass(frozen=True)
class ScheduleInfo:
    id: str
    workflow_id: str
    task_slug: str
    cron: str
    next_fire_at: datetime
    last_fired_at: datetime | None
    last_run_id: str | None


@dataclass(frozen=True)
class WorkflowInfo:
    id: str
    slug: str
    name: str
    start_command: str
    root_dir: str
    active_version_id: str | None
    created_at: datetime
    # Where versions come from: None for a folder registered directly (`conveyor dev`).
    repo_url: str | None = None
    branch: str | None = None
    build_command: str = ""
    runtime: str = "python"  # "python" | "node"


@dataclass(frozen=True)
class VersionInfo:
    id: str
    workflow_id: str
    status: VersionStatus
    created_at: datetime
    message: str | None
    task_names: tuple[str, ...]


@dataclass(frozen=True)
class RunFilter:
    """Runs matching every given criterion; a tuple matches any of its values."""

    status: tuple[RunStatus, ...] = ()
    task_slugs: tuple[str, ...] = ()  # "wf/task" or a bare task name
    workflow_ids: tuple[str, ...] = ()
    version_ids: tuple[str, ...] = ()
    root_ids: tuple[str, ...] = ()
    parent_id: str | None = None
    roots_only: bool = False
    children_only: bool = False
    run_ids: tuple[str, ...] = ()  # only these runs (the dashboard's live rows)
    task_ids: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()  # runs of tasks of these kinds ("task", "flow")


@dataclass(frozen=True)
class LogChunk:
    data: bytes
    next_offset: int
    attempt: int
    finished: bool  # the attempt's instance is gone: nothing more will be appended


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
