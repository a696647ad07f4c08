"""In-process runs: calling a task outside any run executes it here, children too.

The semantics follow a real run: input must be JSON-serialisable and reaches the function
as decoded JSON; the output goes through JSON (a non-JSON result fails the attempt) and a
one-element result list is unwrapped for the caller; a failed attempt is retried under the
task's retry policy (the server's default, 3 retries, when the task has none) but without
waiting, except for input that does not fit the task (`InvalidInputError`, never retried); a
failed child raises `TaskRunError` in its parent. A failed root re-raises the last attempt's own
exception, so tests can match it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from conveyor._codec import ErrorReport, encode_input, encode_output, unwrap_output
from conveyor._context import TaskContext, TaskRunMetadata, current_context
from conveyor._options import Retry
from conveyor.errors import InvalidInputError, TaskNotFoundError, TaskRunError

if TYPE_CHECKING:
    from conveyor._task import TaskDefinition

# What the server applies to a task registered without a retry policy.
DEFAULT_RETRY = Retry()


class LocalRuntime:
    """Runs child runs as coroutines of this process."""

    def __init__(self, root: TaskDefinition[Any, Any]) -> None:
        """Children named by string are looked up in the root task's app.

        Args:
            root: The task called from outside any run.
        """
        self._root = root

    def start_child(
        self, parent: TaskContext, task: TaskDefinition[Any, Any] | str, input_json: str
    ) -> Coroutine[Any, Any, Any]:
        """Returns a coroutine that runs the child here and gives its unwrapped result."""
        definition = self._root.resolve(task) if isinstance(task, str) else task
        if definition is None:
            raise TaskNotFoundError(str(task))
        meta = TaskRunMetadata(
            task_run_id=_new_id(),
            root_task_run_id=parent.root_run_id,
            parent_task_run_id=parent.run_id,
        )
        return self._run_child(definition, input_json, meta)

    async def _run_child(
        self, definition: TaskDefinition[Any, Any], input_json: str, meta: TaskRunMetadata
    ) -> Any:
        try:
            output = await run_with_retries(self, definition, input_json, meta)
        except Exception as exc:
            report = ErrorReport.from_exception(exc)
            raise TaskRunError(
                report.details, task_run_id=meta.task_run_id, stack_trace=report.stack_trace
            ) from exc
        return unwrap_output(json.loads(output))


def run_root_sync(
    definition: TaskDefinition[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Runs a sync task called outside any run and returns its result."""
    input_json = encode_input(definition.name, args, kwargs)
    runtime = LocalRuntime(definition)
    meta = _root_metadata()
    policy = definition.options.retry or DEFAULT_RETRY
    for attempt in range(policy.max_retries + 1):
        ctx = TaskContext(runtime, task_name=definition.name, metadata=meta, attempt=attempt)
        try:
            output = _attempt_sync(definition, ctx, input_json)
        except InvalidInputError:
            raise  # another attempt gets the same input
        except Exception:
            if attempt >= policy.max_retries:
                raise
            continue
        return unwrap_output(json.loads(output))
    raise AssertionError("unreachable")  # pragma: no cover


async def run_root_async(
    definition: TaskDefinition[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Runs a task called outside any run, in the caller's event loop."""
    input_json = encode_input(definition.name, args, kwargs)
    output = await run_with_retries(
        LocalRuntime(definition), definition, input_json, _root_metadata()
    )
    return unwrap_output(json.loads(output))


async def run_with_retries(
    runtime: LocalRuntime,
    definition: TaskDefinition[Any, Any],
    input_json: str,
    meta: TaskRunMetadata,
) -> str:
    """Runs attempts until one succeeds or the retries are spent; returns the output JSON."""
    policy = definition.options.retry or DEFAULT_RETRY
    for attempt in range(policy.max_retries + 1):
        ctx = TaskContext(runtime, task_name=definition.name, metadata=meta, attempt=attempt)
        try:
            if definition.is_async:
                return await _attempt_async(definition, ctx, input_json)
            return _attempt_sync(definition, ctx, input_json)
        except InvalidInputError:
            raise
        except Exception:
            if attempt >= policy.max_retries:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _attempt_sync(definition: TaskDefinition[Any, Any], ctx: TaskContext, input_json: str) -> str:
    args, kwargs = _arguments(definition, ctx, input_json)
    token = current_context.set(ctx)
    try:
        result = definition.func(*args, **kwargs)
    finally:
        current_context.reset(token)
    return encode_output(definition.name, result)


async def _attempt_async(
    definition: TaskDefinition[Any, Any], ctx: TaskContext, input_json: str
) -> str:
    args, kwargs = _arguments(definition, ctx, input_json)
    token = current_context.set(ctx)
    try:
        result = await definition.func(*args, **kwargs)
    finally:
        current_context.reset(token)
    return encode_output(definition.name, result)


def _arguments(
    definition: TaskDefinition[Any, Any], ctx: TaskContext, input_json: str
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    payload = json.loads(input_json)
    args, kwargs = definition.inputs.bind(payload)
    if definition.takes_context:
        args = (ctx, *args)
    return args, kwargs


def _root_metadata() -> TaskRunMetadata:
    run_id = _new_id()
    return TaskRunMetadata(task_run_id=run_id, root_task_run_id=run_id)


def _new_id() -> str:
    return f"local-{uuid.uuid4().hex}"
