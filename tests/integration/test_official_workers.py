"""Workers written with Render's official SDKs (`render` 1.x, `render_sdk` 0.8) run unmodified."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.domain import RunStatus
from tests.integration.engine_fixtures import open_engine, run_to_end

pytestmark = pytest.mark.anyio

RENDER1 = "python -m render.workflows.cli main:app"
RENDER08 = "python -m render_sdk.workflows.cli main:app"


async def test_render1_chain_fan_out_keywords_and_failures(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(
        tmp_path, "render1", start_command=RENDER1, database_url=database_url
    ) as runtime:
        fan = await run_to_end(runtime, "wf/add_squares", [3, 4])
        keywords = await run_to_end(runtime, "wf/greet", {"name": "Ada", "greeting": "Hi"})
        default = await run_to_end(runtime, "wf/greet", {"name": "Ada"})
        failing_parent = await run_to_end(runtime, "wf/parent_of_failure", ["boom"])
        catching = await run_to_end(runtime, "wf/catches_failure", ["bang"])
        meta = await run_to_end(runtime, "wf/metadata", [])
        family = await run_to_end(runtime, "wf/family", [])
        by_keywords = await run_to_end(runtime, "wf/greet_by_keywords", ["Lin"])
        configured = await run_to_end(runtime, "wf/configured", [])
        # a folder tasks may write to (the scratch folder is mounted into their sandbox)
        flaky = await run_to_end(runtime, "wf/flaky_once", [str(scratch / "marker")])
    assert fan.status is RunStatus.SUCCEEDED and fan.results == [25]
    assert keywords.results == ["Hi, Ada!"]
    assert default.results == ["Hello, Ada!"]
    assert failing_parent.status is RunStatus.FAILED
    assert "Subtask failed" in (failing_parent.error or "")
    assert "boom" in (failing_parent.error or "")
    assert failing_parent.stack_trace and "TaskRunError" in failing_parent.stack_trace
    assert catching.results == ["caught: Subtask failed: bang"]
    assert meta.results == [{"id": meta.id, "root": meta.id}]
    assert family.results == [{"me": family.id, "childs_parent": family.id}]
    assert by_keywords.results == ["Hi, Lin!"]
    assert configured.results == ["configured"]  # a task of the merged app, under its own name
    assert flaky.results == ["second attempt made it"] and len(flaky.attempts) == 2
    assert (scratch / "marker").read_text() == "first attempt ran"


async def test_render1_registration_is_recorded(database_url: str, tmp_path: Path) -> None:
    async with open_engine(
        tmp_path, "render1", start_command=RENDER1, database_url=database_url
    ) as runtime:
        greet = await runtime.service.get_task("wsp-default", "wf/greet")
        configured = await runtime.service.get_task("wsp-default", "wf/configured")
        flaky = await runtime.service.get_task("wsp-default", "wf/flaky_once")
    assert [p.name for p in greet.parameters] == ["name", "greeting"]
    assert greet.parameters[1].has_default and greet.parameters[1].default_value == '"Hello"'
    assert greet.options.retry is not None and greet.options.retry.max_retries == 0
    # Render's SDK publishes no schemas: the server leaves its input to the worker
    assert all(p.schema is None for p in greet.parameters) and greet.description is None
    assert configured.options.retry is not None
    assert (configured.options.retry.max_retries, configured.options.retry.factor) == (2, 1.5)
    assert (configured.options.timeout_seconds, configured.options.plan) == (120, "pro")
    assert flaky.options.plan == "starter"  # the merged app's default plan


async def test_render08_await_style_children(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(
        tmp_path, "render08", start_command=RENDER08, database_url=database_url
    ) as runtime:
        fan = await run_to_end(runtime, "wf/double_all", [[1, 2, 3]])
        chain = await run_to_end(runtime, "wf/chain", [5])
        failed = await run_to_end(runtime, "wf/fail", ["nope"])
        renamed = await run_to_end(runtime, "wf/renamed", {"x": 1})
        flaky = await run_to_end(runtime, "wf/flaky_once", [str(scratch / "marker08")])
        fail_task = await runtime.service.get_task("wsp-default", "wf/fail")
    assert fan.status is RunStatus.SUCCEEDED and fan.results == [2, 4, 6]
    assert chain.results == [20]
    assert failed.status is RunStatus.FAILED and failed.error == "nope"
    assert failed.stack_trace and "RuntimeError: nope" in failed.stack_trace
    assert renamed.results == [2]
    assert flaky.results == ["second attempt made it"] and len(flaky.attempts) == 2
    assert (scratch / "marker08").read_text() == "first attempt ran"
    assert fail_task.options.timeout_seconds == 60
