"""Calling tasks outside any run: in-process execution with a real run's semantics."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conveyor import (
    Retry,
    SerializationError,
    TaskContext,
    TaskNotFoundError,
    TaskRunError,
    Workflows,
)

app = Workflows(default_retry=Retry(max_retries=2, wait_duration_ms=60_000))


@app.task
def square(a: int) -> int:
    return a * a


@app.task
async def add_squares(ctx: TaskContext, a: int, b: int) -> int:
    x, y = await asyncio.gather(ctx.run(square, a), ctx.run("square", a=b))
    return int(x + y)


@app.task
async def old_style(a: int) -> int:
    pending: Any = square(a)  # inside a run: submitted now, awaited below (Render 0.x style)
    return int(await pending + 1)


@app.task
def one_item(values: list[int]) -> list[int]:
    return values[:1]


@app.task
def describe(ctx: TaskContext) -> dict[str, Any]:
    return {
        "task": ctx.task_name,
        "attempt": ctx.attempt,
        "parent": ctx.parent_run_id,
        "root_is_self": ctx.root_run_id == ctx.run_id,
    }


@app.task
async def child_info(ctx: TaskContext) -> dict[str, Any]:
    info: dict[str, Any] = await ctx.run(describe)
    info["my_id"] = ctx.run_id
    return info


@app.task
def echo(value: Any) -> Any:
    return value


def test_sync_task_returns_its_value() -> None:
    assert square(3) == 9


def test_async_task_returns_a_coroutine_with_fan_out() -> None:
    call = add_squares(2, 3)
    assert asyncio.iscoroutine(call)
    assert asyncio.run(call) == 13


@pytest.mark.anyio
async def test_inside_a_running_loop() -> None:
    assert square(4) == 16  # a sync task in a running loop: no deadlock
    assert await add_squares(1, 1) == 2
    assert await old_style(3) == 10
    results = await asyncio.gather(*(add_squares(i, i) for i in range(5)))
    assert results == [0, 2, 8, 18, 32]


def test_results_follow_the_wire_rules() -> None:
    unwrapped: Any = one_item([7, 8])
    assert unwrapped == 7  # a one-element list is unwrapped, as for a real caller
    assert echo((1, 2)) == [1, 2]  # input goes through JSON
    assert echo({"k": [1.5, None]}) == {"k": [1.5, None]}


def test_context_in_process() -> None:
    info = asyncio.run(child_info())
    assert info["task"] == "describe" and info["attempt"] == 0
    assert info["parent"] == info["my_id"] and not info["root_is_self"]
    assert describe()["parent"] is None and describe()["root_is_self"]


def test_mixed_inputs_and_non_json_input() -> None:
    with pytest.raises(TypeError, match="cannot mix positional and keyword"):
        square(1, a=2)  # type: ignore[misc]
    with pytest.raises(SerializationError, match="input of task 'echo'"):
        echo({1, 2})

    @app.task
    async def mixes(ctx: TaskContext) -> int:
        return await ctx.run(square, 1, a=2)  # type: ignore[misc]

    with pytest.raises(TypeError, match="cannot mix"):
        asyncio.run(mixes())


def test_retries_without_sleeping() -> None:
    calls: list[int] = []
    local = Workflows()

    @local.task(retry=Retry(max_retries=3, wait_duration_ms=3_600_000))
    def flaky(ctx: TaskContext) -> int:
        calls.append(ctx.attempt)
        if len(calls) < 3:
            raise ConnectionError("flaky")
        return ctx.attempt

    assert flaky() == 2
    assert calls == [0, 1, 2]


def test_a_failing_root_raises_its_own_error_after_the_retries() -> None:
    calls: list[int] = []
    local = Workflows()

    @local.task(retry=Retry(max_retries=1))
    def always(x: int) -> None:
        calls.append(x)
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        always(1)
    assert calls == [1, 1]

    @local.task
    def without_policy() -> None:
        calls.append(0)
        raise ValueError("default policy")

    calls.clear()
    with pytest.raises(ValueError):
        without_policy()
    assert len(calls) == 4  # the server's default: 3 retries


def test_non_json_output_fails_like_the_wire() -> None:
    local = Workflows(default_retry=Retry(max_retries=0))

    @local.task
    def gives_set() -> set[int]:
        return {1}

    @local.task
    async def parent(ctx: TaskContext) -> str:
        try:
            await ctx.run(gives_set)
        except TaskRunError as exc:
            return exc.details
        return "no error"

    with pytest.raises(SerializationError, match="'gives_set' returned a value"):
        gives_set()
    assert asyncio.run(parent()).startswith("SerializationError: task 'gives_set'")


def test_child_failure_raises_task_run_error_in_the_parent() -> None:
    local = Workflows(default_retry=Retry(max_retries=0))

    @local.task
    def bad(x: int) -> int:
        raise KeyError(x)

    @local.task
    async def parent(ctx: TaskContext) -> None:
        await ctx.run(bad, 5)

    with pytest.raises(TaskRunError) as caught:
        asyncio.run(parent())
    assert caught.value.details == "KeyError: 5"
    assert caught.value.stack_trace and "KeyError" in caught.value.stack_trace
    assert str(caught.value) == "Subtask failed: KeyError: 5"


def test_unknown_task_name_and_wrong_arity() -> None:
    local = Workflows(default_retry=Retry(max_retries=0))

    @local.task
    async def calls_missing(ctx: TaskContext) -> None:
        await ctx.run("missing")

    with pytest.raises(TaskNotFoundError):
        asyncio.run(calls_missing())
    with pytest.raises(TypeError, match="task 'square' cannot take this input: takes 1 input"):
        square(1, 2)  # type: ignore[call-arg]
