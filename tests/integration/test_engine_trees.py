"""Chains and fan-out through real worker processes, under the concurrency limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.domain import RunFilter, RunStatus
from tests.integration.engine_fixtures import WS, max_active_attempts, open_engine, run_to_end

pytestmark = pytest.mark.anyio


async def test_chain_returns_child_result(database_url: str, tmp_path: Path) -> None:
    async with open_engine(tmp_path, database_url=database_url) as runtime:
        run = await run_to_end(runtime, "wf/middle", [4])
        assert run.status is RunStatus.SUCCEEDED
        assert run.results == [50]
        children = await runtime.service.list_runs(
            WS, RunFilter(parent_id=run.id), cursor=None, limit=10
        )
        assert [c.task_name for c in children.items] == ["leaf"]
        only_children = await runtime.service.list_runs(
            WS, RunFilter(children_only=True), cursor=None, limit=10
        )
        assert [c.id for c in only_children.items] == [c.id for c in children.items]
        only_roots = await runtime.service.list_runs(
            WS, RunFilter(roots_only=True), cursor=None, limit=10
        )
        assert [r.id for r in only_roots.items] == [run.id]
        assert children.items[0].root_id == run.id
        assert children.items[0].parent_attempt == 0


@pytest.mark.slow
async def test_fan_out_at_the_limit_never_deadlocks(database_url: str, tmp_path: Path) -> None:
    """Three roots, three children each, one grandchild each, two slots: all finish."""
    async with open_engine(tmp_path, database_url=database_url, max_concurrency=2) as runtime:
        roots = [await runtime.service.create_run(WS, "wf/fan", [n * 10]) for n in range(3)]
        await runtime.run_until_idle(timeout=90)
        for n, root in enumerate(roots):
            done = await runtime.service.get_run(WS, root.id)
            assert done.status is RunStatus.SUCCEEDED, done.error
            # a list result travels as is (Render's rule), so `results` is the list itself
            assert done.results == [(n * 10 + i + 1) * 10 for i in range(3)]
        total = await runtime.service.list_runs(WS, RunFilter(), cursor=None, limit=100)
        assert len(total.items) == 3 + 9 + 9
        assert await max_active_attempts(runtime) == 2


async def test_a_task_concurrency_limit_holds_on_top_of_the_workspace_limit(
    database_url: str, tmp_path: Path
) -> None:
    async with open_engine(tmp_path, database_url=database_url, max_concurrency=4) as runtime:
        runs = [await runtime.service.create_run(WS, "wf/one_at_a_time", [n]) for n in range(3)]
        others = [await runtime.service.create_run(WS, "wf/leaf", [n]) for n in range(3)]
        await runtime.run_until_idle(timeout=60)
        for run in runs + others:
            assert (await runtime.service.get_run(WS, run.id)).status is RunStatus.SUCCEEDED
        assert await max_active_attempts(runtime, task_name="one_at_a_time") == 1
        assert await max_active_attempts(runtime) > 1, "other tasks ran beside it"
