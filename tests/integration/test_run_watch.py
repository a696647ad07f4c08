"""Watching runs to their end: the statuses read in one statement, within one workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.domain import RunStatus
from core.errors import NotFound
from tests.integration.engine_fixtures import WS, open_engine, run_to_end

pytestmark = pytest.mark.anyio

OTHER = "ws-other"


async def test_statuses_name_the_first_unknown_run_and_see_only_their_workspace(
    database_url: str, tmp_path: Path
) -> None:
    async with open_engine(tmp_path, database_url=database_url) as runtime:
        await runtime.transitions.ensure_workspace(OTHER, "other", 2)
        done = await run_to_end(runtime, "wf/leaf", [1])
        pending = await runtime.service.create_run(WS, "wf/leaf", [2])
        statuses = await runtime.service.run_statuses(WS, [done.id, pending.id, done.id])
        assert statuses[done.id] is RunStatus.SUCCEEDED and set(statuses) == {done.id, pending.id}

        with pytest.raises(NotFound, match=r"^task run trn-nope not found$"):
            await runtime.service.run_statuses(WS, [done.id, "trn-nope", "trn-later"])
        with pytest.raises(NotFound, match=rf"^task run {done.id} not found$"):
            await runtime.service.run_statuses(OTHER, [done.id])
        with pytest.raises(NotFound):
            async for _ in runtime.service.watch_runs(OTHER, [done.id]):
                pass

        watched = [run async for run in runtime.service.watch_runs(WS, [done.id, pending.id])]
        assert [run.id for run in watched] == [done.id, pending.id]
        assert [run.results for run in watched] == [[2], [3]]
        assert all(run.status is RunStatus.SUCCEEDED for run in watched)
