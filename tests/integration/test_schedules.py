"""Cron schedules fire runs, follow the active version, and are checked at registration."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from core.domain import RunFilter, RunStatus, VersionStatus
from scheduler.runs.values import utcnow
from scheduler.runtime import Runtime
from tests.integration.engine_fixtures import WORKFLOWS, WS, make_settings

pytestmark = pytest.mark.anyio


async def _runs_of(runtime: Runtime, task: str) -> list[str]:
    page = await runtime.service.list_runs(
        WS, RunFilter(task_slugs=(task,)), cursor=None, limit=100
    )
    return [run.id for run in page.items]


async def test_a_schedule_fires_runs_until_a_version_drops_it(
    database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "scheduled"
    shutil.copytree(WORKFLOWS / "scheduled", folder)
    runtime = await Runtime.open(make_settings(tmp_path / "data", database_url))
    try:
        first = await runtime.register_workflow(
            folder, slug="cron", start_command="conveyor-worker main:app"
        )
        assert first.status is VersionStatus.READY, first.message
        (schedule,) = await runtime.service.list_schedules(WS)
        assert schedule.task_slug == "cron/tick" and schedule.cron == "* * * * * */1"
        await runtime.start()
        async with asyncio.timeout(30):
            while len(await _runs_of(runtime, "cron/tick")) < 2:
                await asyncio.sleep(0.2)
        fired = await _runs_of(runtime, "cron/tick")
        done = await runtime.service.wait_run(WS, fired[-1], 30)
        assert done.status is RunStatus.SUCCEEDED and done.results == ["tick"]
        assert done.parent_id is None and done.input == []
        # an hour on by the injected clock, the schedule is due: it fires once for missed times
        assert await runtime.transitions.fire_schedules(utcnow() + timedelta(hours=1)) == 1
        assert len(await _runs_of(runtime, "cron/tick")) > len(fired)

        source = (folder / "main.py").read_text()
        (folder / "main.py").write_text(source.replace('schedule="* * * * * */1"', ""))
        second = await runtime.register_workflow(
            folder, slug="cron", start_command="conveyor-worker main:app"
        )
        assert second.status is VersionStatus.READY, second.message
        assert await runtime.service.list_schedules(WS) == []
        await runtime.run_until_idle(timeout=30)
        settled = set(await _runs_of(runtime, "cron/tick"))
        # however far the clock moves on, nothing is due any more and nothing starts
        assert await runtime.transitions.fire_schedules(utcnow() + timedelta(days=2)) == 0
        assert set(await _runs_of(runtime, "cron/tick")) == settled
    finally:
        await runtime.close()


@pytest.mark.parametrize(
    ("decorator", "message"),
    [
        ('@app.task(schedule="* * * * * */1")\ndef needs(n: int) -> int:', "needs n"),
        ('@app.task(schedule="61 * * * *")\ndef wrong() -> int:', "not a cron expression"),
    ],
)
async def test_bad_schedules_fail_registration(
    tmp_path: Path, decorator: str, message: str
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "main.py").write_text(
        f"from conveyor import Workflows\n\napp = Workflows()\n\n\n{decorator}\n    return 1\n"
    )
    runtime = await Runtime.open(make_settings(tmp_path / "data"))
    try:
        version = await runtime.register_workflow(
            folder, slug="bad", start_command="conveyor-worker main:app"
        )
    finally:
        await runtime.close()
    assert version.status is VersionStatus.REGISTRATION_FAILED
    assert message in (version.message or "")
