"""A real worker process against the fake platform: the instance protocol, byte for byte."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import conveyor
from tests.unit.sdk.sdk_fakes import FakePlatform, b64, unb64

pytestmark = pytest.mark.anyio

WORKFLOW = textwrap.dedent(
    """
    import asyncio
    from conveyor import Retry, TaskContext, TaskRunError, Workflows

    app = Workflows()

    @app.task
    def square(a: int) -> int:
        '''The square of a.

        Indented lines are cleaned.
        '''
        return a * a

    @app.task
    def pair(a: int, b: int = 2) -> list[int]:
        return [a, b]

    @app.task
    def boom(message: str) -> None:
        raise ValueError(message)

    @app.task
    def not_json() -> object:
        return {1, 2}

    @app.task
    def greet(name: str, punctuation: str = "!", extra=None) -> str:
        return f"hello {name}{punctuation}"

    @app.task(
        retry=Retry(max_retries=1, wait_duration_ms=10, backoff_scaling=1.5),
        timeout_seconds=60, plan="pro", schedule="*/5 * * * *", concurrency=2,
    )
    async def fan_out(ctx: TaskContext, n: int) -> int:
        return sum(await asyncio.gather(*(ctx.run(square, i) for i in range(n))))

    @app.task
    async def old_style(a: int) -> int:
        return await square(a) + 1

    @app.task
    async def calls_failing(ctx: TaskContext) -> str:
        try:
            await ctx.run("explode", "x")
        except TaskRunError as exc:
            return f"caught {exc.details}"
        return "not raised"

    @app.task
    def info(ctx: TaskContext) -> dict:
        return {"run": ctx.run_id, "root": ctx.root_run_id, "parent": ctx.parent_run_id,
                "attempt": ctx.attempt, "task": ctx.task_name,
                "meta_parent": ctx.metadata.parent_task_run_id}
    """
)

SDK_DIR = str(Path(conveyor.__file__).resolve().parent.parent)
WORKER = str(Path(sys.executable).with_name("conveyor-worker"))


async def run_worker(
    platform: FakePlatform, tmp_path: Path, mode: str = "run", *, module: bool = False
) -> tuple[int, str]:
    (tmp_path / "workflow.py").write_text(WORKFLOW)
    env = {
        **os.environ,
        "RENDER_SDK_MODE": mode,
        "RENDER_SDK_SOCKET_PATH": platform.socket_path,
        "PYTHONPATH": SDK_DIR,
    }
    argv = [sys.executable, "-m", "conveyor._worker_cli"] if module else [WORKER]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        "workflow:app",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, (out + err).decode()


def callback(platform: FakePlatform) -> dict[str, Any]:
    callbacks = platform.of("/callback")
    assert len(callbacks) == 1
    body: dict[str, Any] = callbacks[0]
    return body


async def test_success_sends_the_wrapped_output(platform: FakePlatform, tmp_path: Path) -> None:
    platform.input = {"task_name": "square", "input": b64([7]), "task_run_id": "trn-1"}
    code, _ = await run_worker(platform, tmp_path)
    assert code == 0
    assert callback(platform) == {"complete": {"output": b64([49])}}
    first = platform.requests[0]
    assert (first.method, first.target.split("?")[0]) == ("GET", "/input")


async def test_module_entry_point_and_list_result(platform: FakePlatform, tmp_path: Path) -> None:
    platform.input = {"task_name": "pair", "input": b64([1, 5])}
    code, _ = await run_worker(platform, tmp_path, module=True)
    assert code == 0
    assert unb64(callback(platform)["complete"]["output"]) == [1, 5]


async def test_keyword_input_and_empty_input(platform: FakePlatform, tmp_path: Path) -> None:
    platform.input = {"task_name": "greet", "input": b64({"name": "ada", "punctuation": "?"})}
    assert (await run_worker(platform, tmp_path))[0] == 0
    assert unb64(callback(platform)["complete"]["output"]) == ["hello ada?"]


async def test_error_sends_details_type_and_stack_trace(
    platform: FakePlatform, tmp_path: Path
) -> None:
    platform.input = {"task_name": "boom", "input": b64(["it broke"])}
    code, output = await run_worker(platform, tmp_path)
    assert code == 1
    error = callback(platform)["error"]
    assert set(error) == {"details", "stack_trace", "type"}
    assert error["details"] == "ValueError: it broke"
    assert "retryable" not in error, "a failure inside the task may succeed on retry"
    assert error["type"] == "ValueError"
    assert error["stack_trace"].startswith("Traceback (most recent call last):")
    assert "raise ValueError(message)" in error["stack_trace"]
    assert "ValueError: it broke" in output  # the traceback also reaches the log


async def test_wrong_arity_names_the_task(platform: FakePlatform, tmp_path: Path) -> None:
    platform.input = {"task_name": "square", "input": b64([1, 2])}
    assert (await run_worker(platform, tmp_path))[0] == 1
    error = callback(platform)["error"]
    assert error["type"] == "InvalidInputError"
    assert error["details"] == (
        "InvalidInputError: task 'square' cannot take this input: takes 1 input, got 2"
    )
    assert error["retryable"] is False, "another attempt cannot make the input fit"


async def test_input_of_the_wrong_type_fails_at_once(
    platform: FakePlatform, tmp_path: Path
) -> None:
    platform.input = {"task_name": "pair", "input": b64({"a": "abc"})}
    assert (await run_worker(platform, tmp_path))[0] == 1
    error = callback(platform)["error"]
    assert error["details"] == (
        "InvalidInputError: task 'pair' cannot take this input: a: expected int, got 'abc'"
    )
    assert error["retryable"] is False


async def test_non_json_output_is_an_error(platform: FakePlatform, tmp_path: Path) -> None:
    platform.input = {"task_name": "not_json", "input": ""}
    assert (await run_worker(platform, tmp_path))[0] == 1
    error = callback(platform)["error"]
    assert error["type"] == "SerializationError"
    assert "not_json" in error["details"] and "not JSON-serialisable" in error["details"]


async def test_unknown_task_is_an_error_callback(platform: FakePlatform, tmp_path: Path) -> None:
    platform.input = {"task_name": "nope", "input": b64([])}
    assert (await run_worker(platform, tmp_path))[0] == 1
    assert callback(platform)["error"]["details"] == "TaskNotFoundError: task 'nope' not found"
    assert callback(platform)["error"]["retryable"] is False


async def test_fan_out_polls_until_children_complete(
    platform: FakePlatform, tmp_path: Path
) -> None:
    platform.input = {"task_name": "fan_out", "input": b64([3])}
    platform.children = {"square": lambda args: args[0] * args[0]}
    platform.still_running_polls = 1
    assert (await run_worker(platform, tmp_path))[0] == 0
    assert unb64(callback(platform)["complete"]["output"]) == [0 + 1 + 4]
    starts = platform.of("/run-subtask")
    assert sorted(unb64(s["input"])[0] for s in starts) == [0, 1, 2]
    assert {s["task_name"] for s in starts} == {"square"}
    assert len({s["idempotency_key"] for s in starts}) == 3
    assert all(s["created_at"].endswith("+00:00") for s in starts)
    assert len(platform.of("/get-subtask-result")) == 6  # one still_running, one answer each


async def test_old_style_call_submits_a_child(platform: FakePlatform, tmp_path: Path) -> None:
    platform.input = {"task_name": "old_style", "input": b64({"a": 4})}
    platform.children = {"square": lambda args: args[0] * args[0]}
    assert (await run_worker(platform, tmp_path))[0] == 0
    assert unb64(callback(platform)["complete"]["output"]) == [17]


async def test_child_error_raises_task_run_error(platform: FakePlatform, tmp_path: Path) -> None:
    def explode(args: Any) -> Any:
        raise ValueError(f"child exploded on {args[0]}")

    platform.input = {"task_name": "calls_failing", "input": b64([])}
    platform.children = {"explode": explode}
    assert (await run_worker(platform, tmp_path))[0] == 0
    output = unb64(callback(platform)["complete"]["output"])
    assert output == ["caught ValueError: child exploded on x"]


async def test_context_carries_the_run_ids(platform: FakePlatform, tmp_path: Path) -> None:
    platform.input = {
        "task_name": "info",
        "input": b64([]),
        "task_run_id": "trn-2",
        "root_task_run_id": "trn-1",
        "parent_task_run_id": "trn-1",
        "attempt": 2,
    }
    assert (await run_worker(platform, tmp_path))[0] == 0
    assert unb64(callback(platform)["complete"]["output"]) == [
        {
            "run": "trn-2",
            "root": "trn-1",
            "parent": "trn-1",
            "attempt": 2,
            "task": "info",
            "meta_parent": "trn-1",
        }
    ]


async def test_retries_5xx_with_the_same_body(platform: FakePlatform, tmp_path: Path) -> None:
    platform.input = {"task_name": "square", "input": b64([2])}
    platform.fail_first = {"/callback": [503], "/input": [429]}
    assert (await run_worker(platform, tmp_path))[0] == 0
    callbacks = platform.of("/callback")
    assert callbacks == [{"complete": {"output": b64([4])}}] * 2


async def test_bad_input_answer_exits_1_without_callback(
    platform: FakePlatform, tmp_path: Path
) -> None:
    platform.input = {"input": b64([1])}
    code, output = await run_worker(platform, tmp_path)
    assert code == 1
    assert platform.of("/callback") == []
    assert "conveyor-worker: error: /input answered without a task_name" in output


async def test_register_sends_every_task(platform: FakePlatform, tmp_path: Path) -> None:
    code, _ = await run_worker(platform, tmp_path, mode="register")
    assert code == 0
    [body] = platform.of("/register-tasks")
    tasks = {t["name"]: t for t in body["tasks"]}
    assert list(tasks) == [
        "square",
        "pair",
        "boom",
        "not_json",
        "greet",
        "fan_out",
        "old_style",
        "calls_failing",
        "info",
    ]
    assert tasks["square"] == {
        "name": "square",
        "options": {},
        "parameters": [
            {"name": "a", "type": "int", "has_default": False, "schema": {"type": "integer"}}
        ],
        "description": "The square of a.\n\nIndented lines are cleaned.",
    }
    assert tasks["greet"]["parameters"] == [
        {"name": "name", "type": "str", "has_default": False, "schema": {"type": "string"}},
        {
            "name": "punctuation",
            "type": "str",
            "has_default": True,
            "default_value": '"!"',
            "schema": {"type": "string"},
        },
        {"name": "extra", "has_default": True, "schema": {}},
    ]
    assert tasks["fan_out"] == {
        "name": "fan_out",
        "options": {
            "retry": {"max_retries": 1, "wait_duration_ms": 10, "factor": 1.5},
            "timeout_seconds": 60,
            "plan": "pro",
            "schedule": "*/5 * * * *",
            "concurrency": 2,
        },
        "parameters": [
            {"name": "n", "type": "int", "has_default": False, "schema": {"type": "integer"}}
        ],
    }
    assert tasks["calls_failing"] == {"name": "calls_failing", "options": {}}
    assert tasks["info"] == {"name": "info", "options": {}}


async def test_cli_rejects_a_bad_spec(tmp_path: Path) -> None:
    for spec, message in [
        ("nocolon", "expected one MODULE:ATTRIBUTE argument"),
        ("missing_mod:app", "cannot import module 'missing_mod'"),
        ("workflow:nothing", "module 'workflow' has no attribute 'nothing'"),
    ]:
        (tmp_path / "workflow.py").write_text("x = 1\n")
        proc = await asyncio.create_subprocess_exec(
            WORKER,
            spec,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": SDK_DIR},
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        assert proc.returncode == 1
        assert err.decode().startswith(f"conveyor-worker: error: {message}")
