"""The REST shapes as pydantic models: the source of `/openapi.json` and of the shape tests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from app.api.openapi_parts import NO_NUL, TASK_REF

RunStatusName = Literal["pending", "running", "succeeded", "failed", "canceled"]
Outcome = Literal[
    "ok", "error", "timeout", "lost", "canceled", "exited_without_result", "out_of_memory"
]
JsonInput = list[Any] | dict[str, Any]


class Shape(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Error(Shape):
    message: str
    code: str


class Health(Shape):
    status: Literal["ok"]


class RunTaskRequest(Shape):
    # Other fields are ignored, as Render's generated client may send some.
    model_config = ConfigDict(extra="allow")

    task: str = Field(
        description="`workflow/task[:versionId]`, or a bare task name if unique",
        json_schema_extra={"maxLength": 400, **TASK_REF},
    )
    input: JsonInput = Field(
        default_factory=list,
        description="positional array or keywords; nested at most 511 levels, no lone surrogate",
    )
    idempotency_key: str | None = Field(
        default=None,
        description="same key within 24 h → same run",
        json_schema_extra={"minLength": 1, "maxLength": 200, "pattern": NO_NUL},
    )


class TaskAttempt(Shape):
    attempt: int = Field(description="0-indexed")
    status: RunStatusName
    task_run_id: str
    enqueued_at: str
    started_at: str
    completed_at: str | None = None
    outcome: Outcome | None = None


class TaskAttemptDetails(TaskAttempt):
    error: str | None = None
    stack_trace: str | None = None
    results: list[Any]
    compute_seconds: float | None = None
    cost_usd: float | None = None
    exit_code: int | None = None


class TaskRun(Shape):
    id: str
    task_id: str
    task_slug: str
    workflow_id: str
    workflow_version_id: str
    status: RunStatusName
    parent_task_run_id: str = Field(description='"" for a root run')
    parent_task_attempt: int | None = Field(default=None, description="left out for a root")
    root_task_run_id: str
    retries: int
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None
    attempts: list[TaskAttempt]


class TaskRunDetails(TaskRun):
    attempts: list[TaskAttemptDetails]  # type: ignore[assignment]
    results: list[Any] = Field(description="always an array; [] until success")
    input: JsonInput
    waiting: bool = Field(description="blocked on child runs")
    error: str | None = None
    stack_trace: str | None = None


class TaskRunWithCursor(Shape):
    task_run: TaskRun
    cursor: str


class RetryOptions(Shape):
    max_retries: int
    wait_duration_ms: int
    factor: float


class TaskOptions(Shape):
    retry: RetryOptions | None = None
    timeout_seconds: int | None = None
    plan: str | None = None
    schedule: str | None = None
    concurrency: int | None = None


class TaskParameter(Shape):
    name: str
    type: str | None = None
    has_default: bool
    default_value: str | None = Field(default=None, description="JSON text")
    schema_: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="JSON Schema of the values it takes (Conveyor's SDK registers it); "
        "`POST /v1/task-runs` refuses input that does not fit",
    )


class Task(Shape):
    id: str
    name: str
    slug: str
    created_at: str
    workflow_id: str
    workflow_version_id: str
    options: TaskOptions
    parameters: list[TaskParameter]
    description: str | None = Field(default=None, description="the task function's docstring")
    language: Literal["python", "typescript"] | None = Field(
        default=None,
        description="the language of the SDK that registered it (from its User-Agent); a "
        "TypeScript task takes its input as a JSON array only",
    )


class TaskWithCursor(Shape):
    task: Task
    cursor: str


class BuildConfig(Shape):
    build_command: str
    repo: str
    runtime: Literal["python", "node"]
    branch: str
    root_dir: str


class Workflow(Shape):
    id: str
    name: str
    slug: str
    owner_id: str
    created_at: str
    updated_at: str
    run_command: str
    root_dir: str
    build_config: BuildConfig
    region: str = Field(description="a placeholder that Render's models require")
    branch: str = Field(description="the tracked branch; empty for a local folder")
    auto_deploy_trigger: Literal["commit", "off"] = Field(
        description="`commit`: every push to the branch deploys; `off`: a local folder"
    )
    active_version_id: str | None = None


class WorkflowWithCursor(Shape):
    workflow: Workflow
    cursor: str


class WorkflowVersion(Shape):
    id: str
    workflow_id: str
    name: str
    created_at: str
    status: Literal[
        "created", "building", "registering", "ready", "build_failed", "registration_failed"
    ]
    tasks: list[str]
    message: str | None = None


class WorkflowVersionWithCursor(Shape):
    workflow_version: WorkflowVersion
    cursor: str


ALL_SCHEMAS: tuple[type[Shape], ...] = (
    Error,
    Health,
    RunTaskRequest,
    TaskRun,
    TaskRunDetails,
    TaskRunWithCursor,
    Task,
    TaskWithCursor,
    Workflow,
    WorkflowWithCursor,
    WorkflowVersion,
    WorkflowVersionWithCursor,
)
