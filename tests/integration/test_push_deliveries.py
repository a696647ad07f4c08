"""One build per pushed commit and workflow, whatever the deliveries, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.builds import make_build_services
from core.build_settings import BuildSettings
from core.db.models import Build, Workflow
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime
from tests.integration.engine_fixtures import make_settings

pytestmark = pytest.mark.anyio

SHA = "c0ffee" + "0" * 34
OTHER = "c0ffee" + "1" * 34


async def test_the_same_commit_pushed_at_once_twice_makes_one_build(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path / "data", database_url)
    # recorded only: no builder runs them here
    settings = settings.model_copy(update={"builds": BuildSettings(in_process=False)})
    runtime = await Runtime.open(settings)
    try:
        now = datetime.now(UTC)
        async with runtime.store.sessions.begin() as session:
            session.add(
                Workflow(
                    id="wf-shop",
                    workspace_id=DEFAULT_WORKSPACE_ID,
                    slug="shop",
                    name="shop",
                    start_command="conveyor-worker main:app",
                    root_dir="",
                    repo_url="https://github.com/acme/shop",
                    branch="main",
                    created_at=now,
                    updated_at=now,
                )
            )
        pipeline = make_build_services(runtime).pipeline
        first, second = await asyncio.gather(
            pipeline.trigger_push(DEFAULT_WORKSPACE_ID, "wf-shop", SHA),
            pipeline.trigger_push(DEFAULT_WORKSPACE_ID, "wf-shop", SHA),
        )
        assert first[0].id == second[0].id
        assert sorted([first[1], second[1]]) == [False, True]  # one new, one existing
        again, new = await pipeline.trigger_push(DEFAULT_WORKSPACE_ID, "wf-shop", SHA)
        assert again.id == first[0].id and not new
        # another commit builds; a deploy of the same commit (the API's) builds again
        other, new = await pipeline.trigger_push(DEFAULT_WORKSPACE_ID, "wf-shop", OTHER)
        assert new and other.id != first[0].id
        deployed = await pipeline.deploy(DEFAULT_WORKSPACE_ID, "wf-shop", commit_sha=SHA)
        assert deployed.id not in (first[0].id, other.id)
        async with runtime.store.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(Build))
            keys = sorted(await session.scalars(select(Build.push_key)), key=str)
        assert count == 3
        assert keys == [None, f"wf-shop@{SHA}", f"wf-shop@{OTHER}"]  # the deploy has none
    finally:
        await runtime.close()
