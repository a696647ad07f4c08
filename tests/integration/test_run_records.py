"""What a finished run records, read right after it ends: every field Render's client relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.domain import RunStatus
from tests.integration.engine_fixtures import open_engine, run_to_end

pytestmark = pytest.mark.anyio

RENDER1 = "render-workflows main:app"


async def test_a_finished_runs_last_attempt_ended_with_it(
    database_url: str, tmp_path: Path
) -> None:
    async with open_engine(tmp_path, database_url=database_url) as runtime:
        for task, input in (("wf/leaf", [1]), ("wf/fails_quietly", [])):
            run = await run_to_end(runtime, task, input)  # read as it turns terminal
            last = run.attempts[-1]
            assert last.ended_at is not None, f"{task}: its attempt ended with the run"
            assert run.completed_at is not None and last.ended_at <= run.completed_at


@pytest.mark.parametrize(
    ("workflow", "start_command", "expected"),
    [
        ("engine", "conveyor-worker main:app", "MemoryError: out of memory"),
        ("render1", RENDER1, "ValueError"),
    ],
)
async def test_an_exception_with_no_message_is_named(
    tmp_path: Path, workflow: str, start_command: str, expected: str
) -> None:
    async with open_engine(tmp_path, workflow, start_command=start_command) as runtime:
        run = await run_to_end(runtime, "wf/fails_quietly", [])
    assert run.status is RunStatus.FAILED
    assert run.error and run.error.startswith(expected), run.error
    assert run.attempts[-1].error == run.error


async def test_children_and_depth_are_capped(tmp_path: Path) -> None:
    async with open_engine(tmp_path, max_children_per_run=3, max_tree_depth=2) as runtime:
        within = await run_to_end(runtime, "wf/spread", [3])
        too_many = await run_to_end(runtime, "wf/spread", [4])
        deep_enough = await run_to_end(runtime, "wf/chain", [2])
        too_deep = await run_to_end(runtime, "wf/chain", [3])
    assert within.status is RunStatus.SUCCEEDED and within.results == [1 + 2 + 3]
    assert deep_enough.status is RunStatus.SUCCEEDED and deep_enough.results == [2]
    assert too_many.status is RunStatus.FAILED
    assert "the limit is 3 (CONVEYOR_LIMITS__MAX_CHILDREN_PER_RUN)" in (too_many.error or "")
    assert too_deep.status is RunStatus.FAILED
    assert "limit of 2 (CONVEYOR_LIMITS__MAX_TREE_DEPTH)" in (too_deep.error or "")
