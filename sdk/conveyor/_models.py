"""What the REST API answers, as frozen models with snake_case fields (camelCase on the wire)."""

from __future__ import annotations

import builtins
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from conveyor._codec import unwrap_output


class RunStatus(StrEnum):
    """Where a run (or attempt) is."""

    PENDING = "pending"  # waiting to be admitted, or between retries
    RUNNING = "running"  # an attempt is running (or waiting on children)
    SUCCEEDED = "succeeded"  # ended with a result
    FAILED = "failed"  # ended with an error, retries spent
    CANCELED = "canceled"  # canceled by a user or with its parent

    @property
    def is_terminal(self) -> bool:
        """Whether the run has ended."""
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED)


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="ignore"
    )


def _status(value: Any) -> Any:
    # "completed" is Render's legacy name for "succeeded".
    return "succeeded" if value == "completed" else value


class Attempt(_Model):
    """One attempt of a run (0-indexed)."""

    attempt: int
    status: RunStatus
    task_run_id: str | None = None
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    outcome: str | None = None
    error: str | None = None
    stack_trace: str | None = None
    results: builtins.list[Any] | None = None

    _check_status = field_validator("status", mode="before")(_status)


class TaskRun(_Model):
    """A run of a task; the fields after ``attempts`` come only from ``get``/``wait``."""

    id: str
    task_id: str | None = None
    task_slug: str | None = None
    workflow_id: str | None = None
    workflow_version_id: str | None = None
    status: RunStatus
    parent_task_run_id: str = ""
    parent_task_attempt: int | None = None
    root_task_run_id: str | None = None
    retries: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    attempts: builtins.list[Attempt] = Field(default_factory=builtins.list)
    results: builtins.list[Any] = Field(default_factory=builtins.list)
    input: builtins.list[Any] | dict[str, Any] | None = None
    error: str | None = None
    stack_trace: str | None = None
    waiting: bool | None = None

    _check_status = field_validator("status", mode="before")(_status)

    @property
    def is_terminal(self) -> bool:
        """Whether the run has ended (succeeded, failed or canceled)."""
        return self.status.is_terminal

    @property
    def is_root(self) -> bool:
        """Whether the run has no parent."""
        return not self.parent_task_run_id

    @property
    def result(self) -> Any:
        """The result as the caller sees it: a one-element ``results`` gives its element.

        None until the run has succeeded; never raises.
        """
        if self.status is not RunStatus.SUCCEEDED:
            return None
        return unwrap_output(self.results)


class RetryPolicy(_Model):
    """A registered task's retry policy."""

    max_retries: int
    wait_duration_ms: int
    factor: float


class TaskOptionsInfo(_Model):
    """A registered task's options."""

    retry: RetryPolicy | None = None
    timeout_seconds: int | None = None
    plan: str | None = None
    schedule: str | None = None
    concurrency: int | None = None


class TaskParameter(_Model):
    """One input of a registered task; ``json_schema`` is what it accepts (Conveyor's SDK)."""

    name: str
    type: str | None = None
    has_default: bool = False
    default_value: str | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")


class Task(_Model):
    """A task of a workflow's active version."""

    id: str
    name: str
    slug: str | None = None
    created_at: datetime | None = None
    workflow_id: str | None = None
    workflow_version_id: str | None = None
    options: TaskOptionsInfo = Field(default_factory=TaskOptionsInfo)
    parameters: builtins.list[TaskParameter] = Field(default_factory=builtins.list)
    description: str | None = None


class Page(_Model):
    """One page of runs; pass ``next_cursor`` to get the next (None on the last page)."""

    items: builtins.list[TaskRun]
    next_cursor: str | None = None
