"""Cancelling a root cancels its whole tree, however deep: a chain of five runs, real processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.domain import RunFilter, RunStatus
from scheduler.runtime import Runtime
from tests.integration.engine_fixtures import WS, open_engine

pytestmark = pytest.mark.anyio

DEPTH = 4  # levels below the root: root, child, grandchild, great-grandchild, and one more


async def _chain(runtime: Runtime, root_id: str) -> list[str]:
    """The ids of the chain from the root down, one run per level, as far as it exists."""
    chain = [root_id]
    while True:
        children = await runtime.service.list_runs(
            WS, RunFilter(parent_id=chain[-1]), cursor=None, limit=10
        )
        if not children.items:
            return chain
        [child] = children.items
        chain.append(child.id)


async def test_cancelling_the_root_cancels_every_level(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, database_url=database_url, max_concurrency=2) as runtime:
        root = await runtime.service.create_run(WS, "wf/nest", ["deep", DEPTH])
        pid_file = scratch / "pid-deep"
        async with asyncio.timeout(60):
            while not pid_file.exists() or not pid_file.read_text():
                await asyncio.sleep(0.05)
        chain = await _chain(runtime, root.id)
        assert len(chain) == DEPTH + 1
        before = [(await runtime.service.get_run(WS, run_id)).status for run_id in chain]
        assert before == [RunStatus.RUNNING] * (DEPTH + 1)

        canceled = await runtime.service.cancel_run(WS, root.id)
        assert canceled.status is RunStatus.CANCELED
        after = [(await runtime.service.get_run(WS, run_id)).status for run_id in chain]
        assert after == [RunStatus.CANCELED] * (DEPTH + 1)
        # the cancel is final: the leaf's attempt ends and nothing is retried or resumed
        await runtime.run_until_idle(timeout=30)
        final = [await runtime.service.get_run(WS, run_id) for run_id in chain]
        assert [run.status for run in final] == [RunStatus.CANCELED] * (DEPTH + 1)
        assert [len(run.attempts) for run in final] == [1] * (DEPTH + 1)
