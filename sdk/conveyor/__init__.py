"""Conveyor's Python SDK: define tasks, run them as a worker, and drive runs over REST.

Example:
    ```python
    from conveyor import Workflows

    app = Workflows()

    @app.task
    def square(a: int) -> int:
        return a * a
    ```
"""

import importlib
from typing import TYPE_CHECKING, Any

from conveyor._app import TaskDecorator, Workflows
from conveyor._context import TaskContext, TaskRunMetadata
from conveyor._flows.context import FlowContext
from conveyor._flows.definition import FlowDefinition
from conveyor._options import PLANS, Retry, TaskOptions
from conveyor._signature import Parameter
from conveyor._task import AsyncTaskDefinition, SyncTaskDefinition, TaskDefinition
from conveyor.errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    ConveyorError,
    DuplicateTaskError,
    FlowDeterminismError,
    FlowLimitError,
    InvalidInputError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    SerializationError,
    ServerUnreachable,
    TaskDefinitionError,
    TaskNotFoundError,
    TaskRunError,
    TaskRunFailed,
    WaitTimeout,
    WorkerError,
)

if TYPE_CHECKING:
    from conveyor._client import AsyncClient, Client
    from conveyor._models import (
        Attempt,
        Page,
        RetryPolicy,
        RunStatus,
        Task,
        TaskOptionsInfo,
        TaskParameter,
        TaskRun,
    )

# The REST client (httpx, pydantic) loads on first use, so a worker process starts fast.
_LAZY = {
    "AsyncClient": "conveyor._client",
    "Client": "conveyor._client",
    **dict.fromkeys(
        (
            "Attempt",
            "Page",
            "RetryPolicy",
            "RunStatus",
            "Task",
            "TaskOptionsInfo",
            "TaskParameter",
            "TaskRun",
        ),
        "conveyor._models",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "PLANS",
    "APIError",
    "AsyncClient",
    "AsyncTaskDefinition",
    "Attempt",
    "AuthenticationError",
    "Client",
    "ConflictError",
    "ConveyorError",
    "DuplicateTaskError",
    "FlowContext",
    "FlowDefinition",
    "FlowDeterminismError",
    "FlowLimitError",
    "InvalidInputError",
    "InvalidRequestError",
    "NotFoundError",
    "Page",
    "Parameter",
    "PayloadTooLargeError",
    "Retry",
    "RetryPolicy",
    "RunStatus",
    "SerializationError",
    "ServerUnreachable",
    "SyncTaskDefinition",
    "Task",
    "TaskContext",
    "TaskDecorator",
    "TaskDefinition",
    "TaskDefinitionError",
    "TaskNotFoundError",
    "TaskOptions",
    "TaskOptionsInfo",
    "TaskParameter",
    "TaskRun",
    "TaskRunError",
    "TaskRunFailed",
    "TaskRunMetadata",
    "WaitTimeout",
    "WorkerError",
    "Workflows",
]
