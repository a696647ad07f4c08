"""Task objects: what `@app.task` returns, and what calling one does."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast

from conveyor import _local
from conveyor._context import current_context
from conveyor._options import TaskOptions
from conveyor._signature import Parameter, takes_context

if TYPE_CHECKING:
    from collections.abc import Mapping

    from conveyor._inputs import TaskInputs

P = ParamSpec("P")
R = TypeVar("R")


class TaskDefinition(Generic[P, R]):
    """A registered task. ``P`` are its inputs (no context), ``R`` what it produces.

    Calling it:
    - outside any run runs it in this process, children too (for unit tests and scripts);
    - inside a run submits a child run at once and returns an awaitable of its result
      (Render 0.x style, ``await square(3)``).
    """

    __name__: str
    __qualname__: str
    __wrapped__: Callable[..., Any]

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str,
        options: TaskOptions,
        registry: Mapping[str, TaskDefinition[Any, Any]],
    ) -> None:
        """Built by `Workflows.task`.

        Args:
            func: The user's function (left untouched).
            name: The task's name.
            options: The effective options.
            registry: The app's tasks, for resolving names in in-process runs.
        """
        # Copies __name__, __doc__, __wrapped__… onto this object; the function stays untouched.
        functools.update_wrapper(cast(Callable[..., Any], self), func)
        self._func = func
        self._name = name
        self._options = options
        self._registry = registry
        self._takes_context = takes_context(func)
        self._inputs: TaskInputs | None = None
        self._is_async = inspect.iscoroutinefunction(func)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r})"

    @property
    def name(self) -> str:
        """The task's name, unique within its workflow."""
        return self._name

    @property
    def func(self) -> Callable[..., Any]:
        """The decorated function, unchanged."""
        return self._func

    @property
    def options(self) -> TaskOptions:
        """The effective options (the task's own, else the app's defaults)."""
        return self._options

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """The task's inputs, the context parameter left out, each with its JSON Schema."""
        return self.inputs.parameters

    @property
    def inputs(self) -> TaskInputs:
        """Checks and converts a run's input; described on first use, then kept."""
        if self._inputs is None:
            from conveyor._inputs import TaskInputs

            self._inputs = TaskInputs(self._func, self._name, self._takes_context)
        return self._inputs

    @property
    def description(self) -> str | None:
        """The function's docstring, cleaned of indentation; None without one."""
        return inspect.getdoc(self._func) or None

    @property
    def takes_context(self) -> bool:
        """Whether the function takes a `TaskContext` first."""
        return self._takes_context

    @property
    def is_async(self) -> bool:
        """Whether the function is a coroutine function."""
        return self._is_async

    def resolve(self, name: str) -> TaskDefinition[Any, Any] | None:
        """The task of that name in this task's app, for in-process runs."""
        return self._registry.get(name)

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        ctx = current_context.get()
        if ctx is not None:
            pending = ctx.start_child(self, args, kwargs)
            # An async task's call is typed as a coroutine; the child is already submitted.
            return _awaiting(pending) if self._is_async else pending
        if self._is_async:
            return _local.run_root_async(self, args, kwargs)
        return _local.run_root_sync(self, args, kwargs)


async def _awaiting(pending: Awaitable[Any]) -> Any:
    return await pending


class SyncTaskDefinition(TaskDefinition[P, R]):
    """A task defined by a plain function."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Runs in-process outside a run; submits a child inside one (returns an awaitable)."""
        result: R = self._call(args, kwargs)
        return result


class AsyncTaskDefinition(TaskDefinition[P, R]):
    """A task defined by a coroutine function."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        """Returns a coroutine: an in-process run outside a run, a child run inside one."""
        result: Coroutine[Any, Any, R] = self._call(args, kwargs)
        return result
