"""Every error the `conveyor` SDK raises.

One root, each class with a stable ``code`` (also the problem ``type`` on the wire):

```
ConveyorError                      conveyor_error
├── TaskDefinitionError            invalid_task_definition   (also ValueError)
│   └── DuplicateTaskError         duplicate_task
├── SerializationError             not_serializable          (also TypeError)
├── InvalidInputError              invalid_input             (also TypeError)
├── TaskNotFoundError              task_not_found
├── TaskRunError                   subtask_failed
├── FlowDeterminismError           flow_determinism_error
├── FlowLimitError                 flow_limit_exceeded
├── WorkerError                    worker_error
├── ServerUnreachable              server_unreachable
├── WaitTimeout                    wait_timeout
├── TaskRunFailed                  run_failed
└── APIError                       api_error
    ├── InvalidRequestError        invalid_request           (400, 422)
    ├── AuthenticationError        unauthorized              (401)
    ├── NotFoundError              not_found                 (404)
    ├── ConflictError              conflict                  (409)
    └── PayloadTooLargeError       payload_too_large         (413)
```
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConflictError",
    "ConveyorError",
    "DuplicateTaskError",
    "FlowDeterminismError",
    "FlowLimitError",
    "InvalidInputError",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "SerializationError",
    "ServerUnreachable",
    "TaskDefinitionError",
    "TaskNotFoundError",
    "TaskRunError",
    "TaskRunFailed",
    "WaitTimeout",
    "WorkerError",
]


class ConveyorError(Exception):
    """Root of every error raised by the SDK."""

    code: str = "conveyor_error"


class TaskDefinitionError(ConveyorError, ValueError):
    """A task's definition or options are invalid (raised when the decorator is applied)."""

    code: str = "invalid_task_definition"


class DuplicateTaskError(TaskDefinitionError):
    """Two tasks of one app (or of merged apps) share a name."""

    code: str = "duplicate_task"

    def __init__(self, name: str) -> None:
        """Builds the message from the duplicated task name.

        Args:
            name: The task name defined twice.
        """
        self.task_name = name
        super().__init__(f"task {name!r} is already defined")


class SerializationError(ConveyorError, TypeError):
    """A task's input or output is not JSON-serialisable."""

    code: str = "not_serializable"


class InvalidInputError(ConveyorError, TypeError):
    """A run's input does not fit the task's parameters; another attempt cannot help."""

    code: str = "invalid_input"

    def __init__(self, task_name: str, problem: str) -> None:
        """Builds the message from the task and what is wrong with its input.

        Args:
            task_name: The task (its name, or ``workflow/task`` on the server).
            problem: What does not fit, such as ``"count: expected int, got 'abc'"``.
        """
        self.task_name = task_name
        self.problem = problem
        super().__init__(f"task {task_name!r} cannot take this input: {problem}")


class TaskNotFoundError(ConveyorError):
    """No task of that name is defined."""

    code: str = "task_not_found"

    def __init__(self, name: str) -> None:
        """Builds the message from the task name.

        Args:
            name: The task name that was not found.
        """
        self.task_name = name
        super().__init__(f"task {name!r} not found")


class TaskRunError(ConveyorError):
    """A child run started from a task failed; raised in the parent task."""

    code: str = "subtask_failed"

    def __init__(
        self,
        details: str,
        *,
        task_run_id: str | None = None,
        stack_trace: str | None = None,
    ) -> None:
        """Builds the message from the child's error details.

        Args:
            details: The child's error, as ``"<ExcClass>: <message>"``.
            task_run_id: The child run's id, when known.
            stack_trace: The child's formatted traceback, when known.
        """
        self.details = details
        self.task_run_id = task_run_id
        self.stack_trace = stack_trace
        super().__init__(f"Subtask failed: {details}")


class FlowDeterminismError(ConveyorError):
    """A flow's attempt reached a step that differs from the one recorded at its ``seq``.

    Raised in the flow; its run fails (another attempt would reach the same step).
    """

    code: str = "flow_determinism_error"

    def __init__(self, message: str, *, details: dict[str, object] | None = None) -> None:
        """Keeps the platform's message and details.

        Args:
            message: What differs, as the platform says it.
            details: ``{code, kind, seq, expected, actual}``.
        """
        self.details = details or {}
        super().__init__(message)


class FlowLimitError(ConveyorError):
    """A flow passed a limit of its step log (steps, a step's payload, the whole history).

    Raised in the flow; its run fails. ``details["code"]`` is Render's code for it
    (``flow_step_limit_exceeded``, ``flow_payload_too_large``, ``flow_history_too_large``).
    """

    code: str = "flow_limit_exceeded"

    def __init__(self, message: str, *, details: dict[str, object] | None = None) -> None:
        """Keeps the platform's message and details.

        Args:
            message: Which limit, as the platform says it.
            details: ``{code, message, seq, limit, value}``.
        """
        self.details = details or {}
        super().__init__(message)


class WorkerError(ConveyorError):
    """The worker could not talk to the platform (bad answer, 4xx, missing environment)."""

    code: str = "worker_error"


class ServerUnreachable(ConveyorError):
    """The Conveyor server could not be reached (connection refused, timeout, broken stream)."""

    code: str = "server_unreachable"


class WaitTimeout(ConveyorError):
    """A run did not end within the time given to `Client.wait`."""

    code: str = "wait_timeout"

    def __init__(self, run_id: str, timeout: float) -> None:
        """Builds the message from the run id and timeout.

        Args:
            run_id: The run waited on.
            timeout: The seconds waited.
        """
        self.run_id = run_id
        self.timeout = timeout
        super().__init__(f"run {run_id} did not finish within {timeout:g} s")


class TaskRunFailed(ConveyorError):
    """A run awaited by `Client.run` ended failed or canceled."""

    code: str = "run_failed"

    def __init__(self, run_id: str, task: str, error: str | None, status: str = "failed") -> None:
        """Builds the message from the run.

        Args:
            run_id: The failed run's id.
            task: The task's slug or name.
            error: The run's error details, if any.
            status: The run's final status (``failed`` or ``canceled``).
        """
        self.run_id = run_id
        self.task = task
        self.error = error
        self.status = status
        suffix = f": {error}" if error else ""
        super().__init__(f"run {run_id} of {task} {status}{suffix}")


class APIError(ConveyorError):
    """The server answered with an error status."""

    code: str = "api_error"

    def __init__(self, status_code: int, message: str, code: str | None = None) -> None:
        """Keeps the status, the server's message and its error code.

        Args:
            status_code: The HTTP status.
            message: The server's ``message``.
            code: The server's ``code``; the class's own code when absent.
        """
        self.status_code = status_code
        self.message = message
        if code is not None:
            self.code = code
        super().__init__(f"{status_code} {self.code}: {message}")


class InvalidRequestError(APIError):
    """The request was malformed or its input invalid (400, 422)."""

    code: str = "invalid_request"


class AuthenticationError(APIError):
    """The API key is missing or wrong (401)."""

    code: str = "unauthorized"


class NotFoundError(APIError):
    """The run or task does not exist (404)."""

    code: str = "not_found"


class ConflictError(APIError):
    """The request conflicts with the run's state (409)."""

    code: str = "conflict"


class PayloadTooLargeError(APIError):
    """The input is over the server's limit (413)."""

    code: str = "payload_too_large"
