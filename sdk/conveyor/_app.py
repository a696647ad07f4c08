"""`Workflows`: the app that tasks are defined on, and the worker's entry point."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

from conveyor._flows.definition import FlowDefinition
from conveyor._options import Retry, TaskOptions, check_plan, check_timeout
from conveyor._task import AsyncTaskDefinition, SyncTaskDefinition, TaskDefinition
from conveyor._worker import serve
from conveyor.errors import DuplicateTaskError, TaskDefinitionError, WorkerError

if TYPE_CHECKING:
    from conveyor._context import TaskContext
    from conveyor._flows.context import FlowContext

P = ParamSpec("P")
R = TypeVar("R")


class TaskDecorator(Protocol):
    """What ``@app.task(...)`` with options returns."""

    # Async overloads first: a coroutine function also matches the sync ones.
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, func: Callable[Concatenate[TaskContext, P], Coroutine[Any, Any, R]], /
    ) -> AsyncTaskDefinition[P, R]: ...

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, func: Callable[P, Coroutine[Any, Any, R]], /
    ) -> AsyncTaskDefinition[P, R]: ...

    @overload
    def __call__(
        self, func: Callable[Concatenate[TaskContext, P], R], /
    ) -> SyncTaskDefinition[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, R], /) -> SyncTaskDefinition[P, R]: ...


class Workflows:
    """A set of tasks: define them with `task`, run them with `start`.

    Example:
        ```python
        app = Workflows(default_retry=Retry(max_retries=3), default_timeout=3600)

        @app.task
        def square(a: int) -> int:
            return a * a
        ```
    """

    def __init__(
        self,
        default_retry: Retry | None = None,
        default_timeout: int | None = None,
        default_plan: str | None = None,
    ) -> None:
        """Sets the defaults that tasks defined on this app inherit.

        Args:
            default_retry: Retry policy of tasks that set none.
            default_timeout: Timeout in seconds (30-86400) of tasks that set none.
            default_plan: Plan of tasks that set none.

        Raises:
            TaskDefinitionError: A default is invalid.
        """
        if default_retry is not None and not isinstance(default_retry, Retry):
            raise TaskDefinitionError(f"default_retry must be a Retry, got {default_retry!r}")
        check_timeout(default_timeout)
        check_plan(default_plan)
        self._default_retry = default_retry
        self._default_timeout = default_timeout
        self._default_plan = default_plan
        self._tasks: dict[str, TaskDefinition[Any, Any]] = {}
        self._flows: dict[str, FlowDefinition[Any, Any]] = {}

    def __repr__(self) -> str:
        return f"Workflows(tasks={list(self._tasks)!r})"

    @property
    def tasks(self) -> dict[str, TaskDefinition[Any, Any]]:
        """The app's tasks by name (a copy)."""
        return dict(self._tasks)

    @property
    def flows(self) -> dict[str, FlowDefinition[Any, Any]]:
        """The app's flows by name (a copy)."""
        return dict(self._flows)

    @overload
    def flow(
        self, func: Callable[Concatenate[FlowContext, P], Coroutine[Any, Any, R]], /
    ) -> FlowDefinition[P, R]: ...

    @overload
    def flow(
        self,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: int | None = None,
        plan: str | None = None,
    ) -> Callable[
        [Callable[Concatenate[FlowContext, P], Coroutine[Any, Any, R]]], FlowDefinition[P, R]
    ]: ...

    def flow(
        self,
        func: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: int | None = None,
        plan: str | None = None,
    ) -> Any:
        """Registers ``async def f(ctx: FlowContext, *args)`` as a flow (see `FlowContext`).

        Args:
            func: The coroutine function, when used without parentheses.
            name: The flow's name; the function's name by default.
            retry: Retry policy of the whole flow (each retry replays its recorded steps).
            timeout: Limit on one attempt, 30-86400 s.
            plan: The instance its attempts run on (its inline steps run there too): one of
                starter, standard, pro, pro_plus, pro_max, pro_ultra.

        Returns:
            The flow object, or a decorator when called with options.

        Raises:
            TaskDefinitionError: An option is invalid, or the name is taken in this app.
        """
        options = TaskOptions(
            retry=retry if retry is not None else self._default_retry,
            timeout_seconds=timeout if timeout is not None else self._default_timeout,
            plan=plan if plan is not None else self._default_plan,
        )

        def decorate(f: Callable[..., Any]) -> FlowDefinition[Any, Any]:
            flow_name = name or getattr(f, "__name__", "")
            if not flow_name or flow_name == "<lambda>":
                raise TaskDefinitionError("a flow needs a name: pass name=... for this callable")
            if flow_name in self._tasks or flow_name in self._flows:
                raise DuplicateTaskError(flow_name)
            definition: FlowDefinition[Any, Any] = FlowDefinition(
                f, name=flow_name, options=options
            )
            self._flows[flow_name] = definition
            return definition

        return decorate if func is None else decorate(func)

    def get_task(self, name: str) -> TaskDefinition[Any, Any] | None:
        """The task of that name, or None."""
        return self._tasks.get(name)

    # Async overloads first (a coroutine function also matches the sync ones), which mypy
    # reports as an overlap: the order is what resolves it.
    @overload
    def task(  # type: ignore[overload-overlap]
        self, func: Callable[Concatenate[TaskContext, P], Coroutine[Any, Any, R]], /
    ) -> AsyncTaskDefinition[P, R]: ...

    @overload
    def task(  # type: ignore[overload-overlap]
        self, func: Callable[P, Coroutine[Any, Any, R]], /
    ) -> AsyncTaskDefinition[P, R]: ...

    @overload
    def task(
        self, func: Callable[Concatenate[TaskContext, P], R], /
    ) -> SyncTaskDefinition[P, R]: ...

    @overload
    def task(self, func: Callable[P, R], /) -> SyncTaskDefinition[P, R]: ...

    @overload
    def task(
        self,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout_seconds: int | None = None,
        timeout: int | None = None,
        plan: str | None = None,
        schedule: str | None = None,
        concurrency: int | None = None,
    ) -> TaskDecorator: ...

    def task(
        self,
        func: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout_seconds: int | None = None,
        timeout: int | None = None,
        plan: str | None = None,
        schedule: str | None = None,
        concurrency: int | None = None,
    ) -> Any:
        """Registers a function as a task, as ``@app.task`` or ``@app.task(...)``.

        A task takes a `TaskContext` first when its first parameter is annotated so.

        Args:
            func: The function, when used without parentheses.
            name: The task's name; the function's name by default.
            retry: Retry policy; the app's default otherwise.
            timeout_seconds: Limit on one attempt, 30-86400 s; the app's default otherwise.
            timeout: Alias of ``timeout_seconds`` (not both).
            plan: One of starter, standard, pro, pro_plus, pro_max, pro_ultra.
            schedule: Cron expression; the server starts runs on it.
            concurrency: Most runs of this task active at once.

        Returns:
            The task object, or a decorator when called with options.

        Raises:
            TaskDefinitionError: An option is invalid, or the name is taken in this app.
        """
        if timeout is not None and timeout_seconds is not None:
            raise TaskDefinitionError("give timeout_seconds or its alias timeout, not both")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise TaskDefinitionError(f"name must be a non-empty string, got {name!r}")
        given_timeout = timeout_seconds if timeout_seconds is not None else timeout
        options = TaskOptions(
            retry=retry if retry is not None else self._default_retry,
            timeout_seconds=given_timeout if given_timeout is not None else self._default_timeout,
            plan=plan if plan is not None else self._default_plan,
            schedule=schedule,
            concurrency=concurrency,
        )

        def decorate(f: Callable[..., Any]) -> TaskDefinition[Any, Any]:
            return self._add(f, name, options)

        return decorate if func is None else decorate(func)

    def _add(
        self, func: Callable[..., Any], name: str | None, options: TaskOptions
    ) -> TaskDefinition[Any, Any]:
        if not callable(func):
            raise TaskDefinitionError(f"@task needs a function, got {func!r}")
        task_name = name or getattr(func, "__name__", "")
        if not task_name or task_name == "<lambda>":
            raise TaskDefinitionError("a task needs a name: pass name=... for this callable")
        if task_name in self._tasks or task_name in self._flows:
            raise DuplicateTaskError(task_name)
        cls: type[TaskDefinition[Any, Any]] = (
            AsyncTaskDefinition if inspect.iscoroutinefunction(func) else SyncTaskDefinition
        )
        definition = cls(func, name=task_name, options=options, registry=self._tasks)
        self._tasks[task_name] = definition
        return definition

    @classmethod
    def from_workflows(
        cls,
        *apps: Workflows,
        default_retry: Retry | None = None,
        default_timeout: int | None = None,
        default_plan: str | None = None,
    ) -> Workflows:
        """Merges apps into one; their tasks keep their own options.

        Args:
            *apps: The apps to merge.
            default_retry: Default retry of tasks defined later on the merged app.
            default_timeout: Default timeout of tasks defined later on the merged app.
            default_plan: Default plan of tasks defined later on the merged app.

        Returns:
            A new app holding every task.

        Raises:
            DuplicateTaskError: Two apps define the same task name.
        """
        merged = cls(default_retry, default_timeout, default_plan)
        for app in apps:
            for task_name, definition in app._tasks.items():
                if task_name in merged._tasks:
                    raise DuplicateTaskError(task_name)
                merged._tasks[task_name] = definition
            for flow_name, flow in app._flows.items():
                if flow_name in merged._tasks or flow_name in merged._flows:
                    raise DuplicateTaskError(flow_name)
                merged._flows[flow_name] = flow
        return merged

    def start(self) -> None:
        """Runs the worker as the platform asked, like Render's ``app.start()``.

        Reads ``RENDER_SDK_MODE`` (``run`` or ``register``) and ``RENDER_SDK_SOCKET_PATH``.
        In ``run`` mode it runs one task and sends its callback; after an error callback it
        exits with status 1.

        Raises:
            WorkerError: The environment is incomplete or the platform's answers are unusable.
            SystemExit: With status 1 after an error callback.
        """
        mode = os.environ.get("RENDER_SDK_MODE")
        socket_path = os.environ.get("RENDER_SDK_SOCKET_PATH")
        if not mode:
            raise WorkerError("RENDER_SDK_MODE is not set (expected 'run' or 'register')")
        if not socket_path:
            raise WorkerError("RENDER_SDK_SOCKET_PATH is not set")
        code = serve(self._tasks, mode, socket_path, self._flows)
        if code:
            raise SystemExit(code)
