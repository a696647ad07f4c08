"""`TaskContext`: what a running task knows about its run and how it starts children."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, overload

from conveyor._codec import encode_input

if TYPE_CHECKING:
    from conveyor._task import TaskDefinition

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class TaskRunMetadata:
    """Run ids of one execution, as in Render's ``ctx.metadata``.

    Attributes:
        task_run_id: This run's id.
        root_task_run_id: The id of the run at the root of the tree (this one for a root).
        parent_task_run_id: The parent's id; None for a root.
    """

    task_run_id: str | None = None
    root_task_run_id: str | None = None
    parent_task_run_id: str | None = None


class Runtime(Protocol):
    """Where child runs go: the platform over the socket, or this process."""

    def start_child(
        self, parent: TaskContext, task: TaskDefinition[Any, Any] | str, input_json: str
    ) -> Coroutine[Any, Any, Any]:
        """Returns a coroutine that runs the child and gives its (unwrapped) result."""
        ...


# The context of the task running in this asyncio task or thread; None outside any run.
current_context: ContextVar[TaskContext | None] = ContextVar("conveyor_task_context", default=None)


class TaskContext:
    """Handed to a task whose first parameter is annotated ``TaskContext``.

    Example:
        ```python
        @app.task
        async def add_squares(ctx: TaskContext, a: int, b: int) -> int:
            x, y = await asyncio.gather(ctx.run(square, a), ctx.run(square, b))
            return x + y
        ```
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        task_name: str,
        metadata: TaskRunMetadata,
        attempt: int = 0,
    ) -> None:
        """Built by the worker or the in-process runner, not by users.

        Args:
            runtime: Where children are started.
            task_name: The running task's name.
            metadata: The run's ids.
            attempt: The attempt number, 0 for the first.
        """
        self._runtime = runtime
        self._task_name = task_name
        self._metadata = metadata
        self._attempt = attempt

    def __repr__(self) -> str:
        return f"TaskContext(task_name={self._task_name!r}, run_id={self.run_id!r})"

    @property
    def task_name(self) -> str:
        """The running task's name."""
        return self._task_name

    @property
    def run_id(self) -> str | None:
        """This run's id, when the server sent it."""
        return self._metadata.task_run_id

    @property
    def root_run_id(self) -> str | None:
        """The root run's id, when the server sent it."""
        return self._metadata.root_task_run_id

    @property
    def parent_run_id(self) -> str | None:
        """The parent run's id; None for a root."""
        return self._metadata.parent_task_run_id

    @property
    def attempt(self) -> int:
        """The attempt number, 0 for the first."""
        return self._attempt

    @property
    def metadata(self) -> TaskRunMetadata:
        """The run's ids, as Render's ``ctx.metadata``."""
        return self._metadata

    @overload
    async def run(self, task: TaskDefinition[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    async def run(self, task: str, /, *args: Any, **kwargs: Any) -> Any: ...

    async def run(self, task: TaskDefinition[Any, Any] | str, /, *args: Any, **kwargs: Any) -> Any:
        """Starts a child run and waits for its result.

        Args:
            task: The task object, or the name of a task of the same workflow.
            *args: Positional inputs (not with keyword inputs).
            **kwargs: Keyword inputs (not with positional inputs).

        Returns:
            The child's result (a one-element result list is unwrapped).

        Raises:
            TypeError: Both positional and keyword inputs were given.
            SerializationError: The input is not JSON-serialisable.
            TaskRunError: The child failed.
        """
        return await self.start_child(task, args, kwargs)

    def start_child(
        self, task: TaskDefinition[Any, Any] | str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Awaitable[Any]:
        """Submits a child now (when a loop runs) and returns an awaitable of its result.

        Args:
            task: The task object or name.
            args: Positional inputs.
            kwargs: Keyword inputs.

        Returns:
            An awaitable of the child's result.
        """
        name = task if isinstance(task, str) else task.name
        coro = self._runtime.start_child(self, task, encode_input(name, args, kwargs))
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return coro
        return asyncio.ensure_future(coro)
