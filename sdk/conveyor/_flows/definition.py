"""Flow objects: what `@app.flow` returns."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast

from conveyor._options import TaskOptions
from conveyor.errors import TaskDefinitionError

if TYPE_CHECKING:
    from conveyor._inputs import TaskInputs

P = ParamSpec("P")
R = TypeVar("R")


class FlowDefinition(Generic[P, R]):
    """A registered flow: ``async def f(ctx: FlowContext, *args)``; ``P`` its inputs after the
    context, ``R`` what it returns. It runs on the platform only (`conveyor run wf/flow`)."""

    __name__: str
    __qualname__: str
    __wrapped__: Callable[..., Any]

    def __init__(self, func: Callable[..., Any], *, name: str, options: TaskOptions) -> None:
        """Built by `Workflows.flow`.

        Args:
            func: The user's coroutine function (left untouched).
            name: The flow's name, unique among the app's tasks and flows.
            options: Its retry policy (of the whole flow) and timeout (of one attempt).

        Raises:
            TaskDefinitionError: The function is not a coroutine function taking a context.
        """
        if not inspect.iscoroutinefunction(func):
            raise TaskDefinitionError(f"flow {name!r} must be an async def")
        if not inspect.signature(func).parameters:
            raise TaskDefinitionError(f"flow {name!r} must take a FlowContext first")
        functools.update_wrapper(cast(Callable[..., Any], self), func)
        self._func = func
        self._name = name
        self._options = options
        self._inputs: TaskInputs | None = None

    def __repr__(self) -> str:
        return f"FlowDefinition(name={self._name!r})"

    @property
    def name(self) -> str:
        """The flow's name."""
        return self._name

    @property
    def func(self) -> Callable[..., Any]:
        """The decorated function, unchanged."""
        return self._func

    @property
    def options(self) -> TaskOptions:
        """The flow's options."""
        return self._options

    @property
    def inputs(self) -> TaskInputs:
        """Checks and converts a run's input (the context parameter left out)."""
        if self._inputs is None:
            from conveyor._inputs import TaskInputs

            self._inputs = TaskInputs(self._func, self._name, True)
        return self._inputs

    @property
    def description(self) -> str | None:
        """The function's docstring; None without one."""
        return inspect.getdoc(self._func) or None
