"""Defining tasks: the exported surface, options, validation, merging."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import pytest
from render.workflows import TaskContext as RenderContext

import conveyor
from conveyor import (
    DuplicateTaskError,
    Retry,
    TaskContext,
    TaskDefinitionError,
    Workflows,
)
from conveyor._worker import registration

EXPECTED_ALL = [
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


def test_exported_members() -> None:
    assert conveyor.__all__ == EXPECTED_ALL
    assert conveyor.PLANS == ("starter", "standard", "pro", "pro_plus", "pro_max", "pro_ultra")
    for name in conveyor.__all__[1:]:
        assert getattr(conveyor, name).__module__.startswith("conveyor")


def test_every_error_descends_from_the_root_with_a_code() -> None:
    errors = [
        v
        for v in vars(conveyor.errors).values()
        if isinstance(v, type) and issubclass(v, Exception)
    ]
    codes = set()
    for cls in errors:
        assert issubclass(cls, conveyor.ConveyorError)
        assert cls.__name__ in (conveyor.errors.__doc__ or "")
        codes.add(cls.code)
    assert len(codes) == len(errors)


def test_retry_defaults_and_validation() -> None:
    assert Retry() == Retry(max_retries=3, wait_duration_ms=1000, backoff_scaling=2.0)
    assert Retry().delay_ms(3) == 4000
    with pytest.raises(AttributeError):
        Retry().max_retries = 1  # type: ignore[misc]
    for bad in (
        {"max_retries": -1},
        {"wait_duration_ms": -5},
        {"backoff_scaling": -1.0},
        {"max_retries": 1.5},
    ):
        with pytest.raises(TaskDefinitionError):
            Retry(**bad)


def test_decorator_with_and_without_arguments_keeps_the_function() -> None:
    app = Workflows(default_retry=Retry(max_retries=1), default_timeout=120, default_plan="pro")

    def double(x: int) -> int:
        """Doubles."""
        return 2 * x

    before = dict(vars(double))
    plain = app.task(double)
    named = app.task(name="twice", timeout=30, plan="starter")(double)
    assert vars(double) == before  # nothing attached to the user's function
    assert plain.name == "double" and named.name == "twice"
    assert plain.__doc__ == "Doubles." and plain.__name__ == "double"
    assert plain.func is double
    assert inspect.signature(plain) == inspect.signature(double)
    assert plain.options.retry == Retry(max_retries=1)
    assert (plain.options.timeout_seconds, plain.options.plan) == (120, "pro")
    assert (named.options.timeout_seconds, named.options.plan) == (30, "starter")
    assert list(app.tasks) == ["double", "twice"]


@pytest.mark.parametrize(
    "options",
    [
        {"timeout_seconds": 0},
        {"timeout_seconds": 86_401},
        {"timeout": -10},
        {"timeout_seconds": 60, "timeout": 60},
        {"plan": "huge"},
        {"concurrency": 0},
        {"concurrency": True},
        {"schedule": "every day"},
        {"retry": {"max_retries": 1}},
        {"name": ""},
    ],
)
def test_invalid_options_fail_when_applied(options: dict[str, Any]) -> None:
    app = Workflows()
    with pytest.raises(TaskDefinitionError):
        app.task(**options)
    assert app.tasks == {}


def test_invalid_app_defaults() -> None:
    with pytest.raises(TaskDefinitionError):
        Workflows(default_timeout=0)
    with pytest.raises(TaskDefinitionError):
        Workflows(default_plan="gigantic")


def test_duplicate_names_and_merging() -> None:
    a, b = Workflows(), Workflows()

    @a.task
    def one() -> int:
        return 1

    with pytest.raises(DuplicateTaskError, match="'one'"):
        a.task(name="one")(lambda: 2)

    @b.task
    def two() -> int:
        return 2

    merged = Workflows.from_workflows(a, b)
    assert list(merged.tasks) == ["one", "two"]
    assert merged.get_task("two") is two
    with pytest.raises(DuplicateTaskError):
        Workflows.from_workflows(a, merged)


def test_context_is_recognised_by_annotation() -> None:
    app = Workflows()

    @app.task
    def with_ctx(ctx: TaskContext, a: int) -> int:
        return a

    @app.task
    def by_string(ctx: "TaskContext", a: int) -> int:  # noqa: UP037 - the string form is the case
        return a

    @app.task
    def no_ctx(ctx: int, a: int = 3) -> int:
        return a

    def render_task(ctx: RenderContext) -> None:
        return None

    assert with_ctx.takes_context and by_string.takes_context
    assert not no_ctx.takes_context
    assert app.task(render_task).takes_context
    wire = {t["name"]: t for t in registration(app.tasks)}
    assert wire["with_ctx"]["parameters"] == [
        {"name": "a", "type": "int", "has_default": False, "schema": {"type": "integer"}}
    ]
    assert [p["name"] for p in wire["no_ctx"]["parameters"]] == ["ctx", "a"]
    assert wire["no_ctx"]["parameters"][1]["default_value"] == "3"
    assert "parameters" not in wire["render_task"]


def test_start_needs_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    app = Workflows()
    with pytest.raises(conveyor.WorkerError, match="RENDER_SDK_MODE"):
        app.start()
    monkeypatch.setenv("RENDER_SDK_MODE", "run")
    with pytest.raises(conveyor.WorkerError, match="RENDER_SDK_SOCKET_PATH"):
        app.start()
    monkeypatch.setenv("RENDER_SDK_SOCKET_PATH", "/nonexistent.sock")
    monkeypatch.setenv("RENDER_SDK_MODE", "serve")
    with pytest.raises(conveyor.WorkerError, match="'run' or 'register'"):
        app.start()


def test_importing_the_sdk_leaves_the_rest_client_unloaded() -> None:
    import subprocess
    import sys

    code = (
        "import sys, conveyor, conveyor._worker, conveyor._worker_cli\n"
        "assert 'httpx' not in sys.modules and 'pydantic' not in sys.modules\n"
        "from conveyor import Client, TaskRun\n"
        "assert 'httpx' in sys.modules\n"
    )
    sdk_dir = str(Path(conveyor.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": sdk_dir}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
