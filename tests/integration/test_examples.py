"""The examples run as the README says: hello on Conveyor's SDK, render-sdk on Render's own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.domain import RunStatus, VersionStatus
from scheduler.runtime import Runtime
from tests.integration.engine_fixtures import make_settings, run_to_end

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).parents[2] / "examples"


async def _open(tmp_path: Path, example: str, start_command: str) -> Runtime:
    folder = tmp_path / example
    shutil.copytree(EXAMPLES / example, folder, ignore=shutil.ignore_patterns(".conveyor"))
    runtime = await Runtime.open(make_settings(tmp_path / "data"))
    version = await runtime.register_workflow(folder, slug=example, start_command=start_command)
    assert version.status is VersionStatus.READY, version.message
    await runtime.start()
    return runtime


async def test_hello(tmp_path: Path) -> None:
    runtime = await _open(tmp_path, "hello", "conveyor-worker main:app")
    try:
        assert (await run_to_end(runtime, "hello/add_squares", [3, 4])).results == [25]
        assert (await run_to_end(runtime, "hello/sum_of_squares", [[1, 2, 3]])).results == [14]
        flaky = await run_to_end(runtime, "hello/flaky", {"chance_of_failure": 0.0})
        assert flaky.results == ["made it"]
        sleeper = await run_to_end(runtime, "hello/sleeper", [0.2])
        assert sleeper.status is RunStatus.SUCCEEDED
    finally:
        await runtime.close()


async def test_render_sdk_example_with_render_workflows(tmp_path: Path) -> None:
    runtime = await _open(tmp_path, "render-sdk", "render-workflows main:app")
    try:
        assert (await run_to_end(runtime, "render-sdk/add_squares", [3, 4])).results == [25]
        caught = await run_to_end(runtime, "render-sdk/call_explode", ["x"])
        assert caught.results == ["caught: Subtask failed: x"]
    finally:
        await runtime.close()
