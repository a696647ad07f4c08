"""The worker side of the instance protocol: run one task, or register the app's tasks."""

from __future__ import annotations

import inspect
import sys
import uuid
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conveyor._codec import ErrorReport, b64_json, encode_output, from_b64_json, unwrap_output
from conveyor._context import TaskContext, TaskRunMetadata, current_context
from conveyor._uds import Sleep, SocketClient, async_sleep
from conveyor.errors import TaskNotFoundError, TaskRunError, WorkerError

if TYPE_CHECKING:
    from conveyor._flows.definition import FlowDefinition
    from conveyor._task import TaskDefinition

POLL_INTERVAL_S = 1.0

Tasks = Mapping[str, "TaskDefinition[Any, Any]"]
Flows = Mapping[str, "FlowDefinition[Any, Any]"]


class WorkerRuntime:
    """Starts children through the platform and polls for their results."""

    def __init__(
        self,
        client: SocketClient,
        *,
        poll_interval: float = POLL_INTERVAL_S,
        sleep: Sleep = async_sleep,
    ) -> None:
        """Uses the given socket client for every request.

        Args:
            client: The platform's socket.
            poll_interval: Wait after each ``still_running: true``.
            sleep: How to wait.
        """
        self._client = client
        self._poll_interval = poll_interval
        self._sleep = sleep

    def start_child(
        self, parent: TaskContext, task: TaskDefinition[Any, Any] | str, input_json: str
    ) -> Coroutine[Any, Any, Any]:
        """Returns a coroutine that submits the child and waits for its unwrapped result."""
        request = {
            "task_name": task if isinstance(task, str) else task.name,
            "input": b64_json(input_json),
            # Built once so every resend of the request carries the same key.
            "idempotency_key": str(uuid.uuid4()),
            "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        }
        return self._run_child(request)

    async def _run_child(self, request: dict[str, Any]) -> Any:
        answer = await self._client.request("POST", "/run-subtask", request)
        run_id = answer.get("task_run_id") if isinstance(answer, dict) else None
        if not isinstance(run_id, str) or not run_id:
            raise WorkerError(f"/run-subtask answered without a task_run_id: {answer!r}")
        while True:
            # `hold`: this client waits without a thread per request, so the platform may hold
            # the request open until the child ends however many children wait at once
            answer = await self._client.request(
                "POST", "/get-subtask-result", {"task_run_id": run_id, "hold": True}
            )
            if not isinstance(answer, dict) or not isinstance(answer.get("still_running"), bool):
                raise WorkerError(f"/get-subtask-result answered without still_running: {answer!r}")
            if answer["still_running"]:
                await self._sleep(self._poll_interval)
                continue
            return child_outcome(run_id, answer)


def child_outcome(run_id: str, answer: dict[str, Any]) -> Any:
    """A finished child's result, or its error raised as `TaskRunError`."""
    error = answer.get("error")
    if isinstance(error, dict):
        trace = error.get("stack_trace")
        raise TaskRunError(
            str(error.get("details", "")),
            task_run_id=run_id,
            stack_trace=trace if isinstance(trace, str) else None,
        )
    complete = answer.get("complete")
    if isinstance(complete, dict):
        try:
            return unwrap_output(from_b64_json(complete.get("output")))
        except ValueError as exc:
            raise WorkerError(f"child {run_id} output is not base64 JSON: {exc}") from None
    raise WorkerError(f"/get-subtask-result answered neither complete nor error: {answer!r}")


def run_one(tasks: Tasks, client: SocketClient, flows: Flows | None = None) -> int:
    """Fetches the input, runs the task, sends the callback.

    A sync task runs on this thread with no event loop; an async one in ``asyncio.run``.

    Args:
        tasks: The app's tasks by name.
        client: The platform's socket.
        flows: The app's flows by name.

    Returns:
        The exit code: 0 after a success callback (or a flow's pause), 1 after an error
        callback.

    Raises:
        WorkerError: The platform's ``/input`` answer is unusable (no callback is sent).
    """
    answer = client.request_sync("GET", "/input")
    if not isinstance(answer, dict) or not isinstance(answer.get("task_name"), str):
        raise WorkerError(f"/input answered without a task_name: {answer!r}")
    name: str = answer["task_name"]
    try:
        payload = from_b64_json(answer.get("input"))
    except ValueError as exc:
        raise WorkerError(f"/input carried input that is not base64 JSON: {exc}") from None
    attempt = answer["attempt"] if isinstance(answer.get("attempt"), int) else 0
    flow = (flows or {}).get(name)
    if flow is not None:
        from conveyor._flows.runner import run_flow

        run_id = answer.get("task_run_id")
        return run_flow(
            flow,
            client,
            payload,
            run_id=run_id if isinstance(run_id, str) else None,
            attempt=attempt,
        )
    ctx = TaskContext(
        WorkerRuntime(client),
        task_name=name,
        metadata=_metadata(answer),
        attempt=attempt,
    )
    definition = tasks.get(name)
    try:
        # an unknown task or an input that does not fit it fails every attempt alike
        if definition is None:
            raise TaskNotFoundError(name)
        args, kwargs = definition.inputs.bind(payload)
    except Exception as exc:
        return _report_error(client, ErrorReport.from_exception(exc, retryable=False))
    try:
        output = _execute(definition, ctx, args, kwargs, client)
    except Exception as exc:
        return _report_error(client, ErrorReport.from_exception(exc))
    try:
        client.request_sync("POST", "/callback", {"complete": {"output": b64_json(output)}})
    except WorkerError as exc:
        # The platform refused the result: say so with an error callback, as Render's SDK does.
        report = ErrorReport.from_exception(exc)
        client.request_sync("POST", "/callback", {"error": report.to_wire()})
        return 1
    return 0


def _report_error(client: SocketClient, report: ErrorReport) -> int:
    sys.stderr.write(report.stack_trace)
    client.request_sync("POST", "/callback", {"error": report.to_wire()})
    return 1


def _execute(
    definition: TaskDefinition[Any, Any],
    ctx: TaskContext,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    client: SocketClient,
) -> str:
    if definition.takes_context:
        args = (ctx, *args)
    token = current_context.set(ctx)
    try:
        result = definition.func(*args, **kwargs)
        if inspect.isawaitable(result):
            import asyncio  # only async tasks pay for an event loop

            result = asyncio.run(client.closing(result))
    finally:
        current_context.reset(token)
    return encode_output(definition.name, result)


def _metadata(answer: dict[str, Any]) -> TaskRunMetadata:
    def text(key: str) -> str | None:
        value = answer.get(key)
        return value if isinstance(value, str) else None

    return TaskRunMetadata(
        task_run_id=text("task_run_id"),
        root_task_run_id=text("root_task_run_id") or None,
        parent_task_run_id=text("parent_task_run_id"),
    )


def register(tasks: Tasks, client: SocketClient, flows: Flows | None = None) -> int:
    """Sends the app's task list to ``/register-tasks``.

    Args:
        tasks: The app's tasks by name.
        client: The platform's socket.
        flows: The app's flows by name (registered as tasks of kind ``flow``).

    Returns:
        The exit code, 0.

    Raises:
        WorkerError: The platform refused the registration.
    """
    wire = registration(tasks) + flow_registration(flows or {})
    client.request_sync("POST", "/register-tasks", {"tasks": wire})
    return 0


def registration(tasks: Tasks) -> list[dict[str, Any]]:
    """The ``tasks`` array of a registration.

    Args:
        tasks: The app's tasks by name.

    Returns:
        One object per task: name, options (``{}`` when none), parameters (when any), each with
        its JSON Schema, and the docstring as ``description`` (extra keys the server may ignore).
    """
    wire: list[dict[str, Any]] = []
    for definition in tasks.values():
        entry: dict[str, Any] = {"name": definition.name, "options": definition.options.to_wire()}
        if definition.parameters:
            entry["parameters"] = [p.to_wire() for p in definition.parameters]
        if definition.description:
            entry["description"] = definition.description
        wire.append(entry)
    return wire


def flow_registration(flows: Flows) -> list[dict[str, Any]]:
    """The flows' entries of a registration: as tasks, with ``kind: "flow"``.

    Args:
        flows: The app's flows by name.

    Returns:
        One object per flow.
    """
    wire: list[dict[str, Any]] = []
    for flow in flows.values():
        entry: dict[str, Any] = {
            "name": flow.name,
            "kind": "flow",
            "options": flow.options.to_wire(),
        }
        if flow.inputs.parameters:
            entry["parameters"] = [p.to_wire() for p in flow.inputs.parameters]
        if flow.description:
            entry["description"] = flow.description
        wire.append(entry)
    return wire


def serve(tasks: Tasks, mode: str, socket_path: str, flows: Flows | None = None) -> int:
    """Runs the worker in ``run`` or ``register`` mode.

    Args:
        tasks: The app's tasks by name.
        mode: ``run`` or ``register`` (RENDER_SDK_MODE).
        socket_path: The platform's socket (RENDER_SDK_SOCKET_PATH).
        flows: The app's flows by name.

    Returns:
        The process's exit code.

    Raises:
        WorkerError: Unknown mode, or the platform's answers are unusable.
    """
    if mode not in ("run", "register"):
        raise WorkerError(f"RENDER_SDK_MODE must be 'run' or 'register', got {mode!r}")
    client = SocketClient(socket_path)
    try:
        return run_one(tasks, client, flows) if mode == "run" else register(tasks, client, flows)
    finally:
        client.close()
