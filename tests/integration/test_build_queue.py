"""The build queue on SQLite and PostgreSQL: claims, take-overs, hand-backs (builder/queue.py)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from builder.pipeline import BuildPipeline
from builder.queue import BuildQueue, Claim
from builder.records import BuildStatus
from builder.reporter import BuildContext, BuildOutcome
from core.build_settings import BuilderSettings, BuildSettings
from core.db.engine import create_engine, migrate, session_factory
from core.db.models import Build, BuilderProcess, Workflow, WorkflowVersion, Workspace
from core.domain import VersionStatus
from core.ids import new_id
from core.settings import Settings

pytestmark = pytest.mark.anyio

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    await migrate(engine)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def queue_builds(sessions: Sessions, count: int) -> list[str]:
    """`count` queued builds of one workflow, oldest first."""
    now = datetime.now(UTC)
    ids = []
    async with sessions.begin() as session:
        if await session.get(Workspace, "wsp-q") is None:
            session.add(Workspace(id="wsp-q", name="q", max_concurrency=5, created_at=now))
            await session.flush()
            session.add(
                Workflow(
                    id="wf-q",
                    workspace_id="wsp-q",
                    slug="q",
                    name="q",
                    start_command="conveyor-worker main:app",
                    root_dir="",
                    repo_url="file:///nowhere/o/q",
                    created_at=now,
                )
            )
            await session.flush()
        for number in range(count):
            version = WorkflowVersion(
                id=new_id("wfv"),
                workflow_id="wf-q",
                status=VersionStatus.CREATED.value,
                root_dir="",
                start_command="conveyor-worker main:app",
                created_at=now,
            )
            session.add(version)
            await session.flush()
            build = Build(
                id=new_id("bld"),
                workflow_id="wf-q",
                version_id=version.id,
                status=BuildStatus.QUEUED.value,
                trigger="push",
                builder="buildkit",
                log_key="",
                created_at=now + timedelta(milliseconds=number),
            )
            session.add(build)
            ids.append(build.id)
    return ids


async def row(sessions: Sessions, build_id: str) -> tuple[Build, WorkflowVersion]:
    async with sessions() as session:
        build = await session.get_one(Build, build_id)
        return build, await session.get_one(WorkflowVersion, build.version_id)


def _settings(**changes: object) -> BuilderSettings:
    return BuilderSettings(stale_after_seconds=30, **changes)  # type: ignore[arg-type]


async def test_each_queued_build_is_claimed_once_oldest_first(sessions: Sessions) -> None:
    builds = await queue_builds(sessions, 12)
    queues = [BuildQueue(sessions, _settings(name=f"b{n}")) for n in range(3)]
    for queue in queues:
        await queue.register()

    async def drain(queue: BuildQueue) -> list[str]:
        claimed = []
        while await queue.queued():
            claim = await queue.claim()
            if claim is not None:
                claimed.append(claim.build_id)
        return claimed

    taken = await asyncio.gather(*(drain(q) for q in queues))
    everything = [b for claimed in taken for b in claimed]
    assert sorted(everything) == sorted(builds), "every build claimed, none twice"
    for claimed in taken:
        assert claimed == sorted(claimed, key=builds.index), "each builder takes the oldest"
    for queue, claimed in zip(queues, taken, strict=True):
        for build_id in claimed:
            build, version = await row(sessions, build_id)
            assert (build.status, build.builder_id, build.attempts) == ("running", queue.id, 1)
            assert build.claimed_at is not None
            assert version.status == VersionStatus.BUILDING.value
    assert await queues[0].claim() is None


async def test_a_dead_builders_build_is_taken_over_once_then_failed(sessions: Sessions) -> None:
    (build_id,) = await queue_builds(sessions, 1)
    first = BuildQueue(sessions, _settings(name="first"))
    # a builder on this host whose process is gone: its pid is one that exited
    exited = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import os; print(os.getpid())", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await exited.communicate()
    first.pid = int(out)
    await first.register()
    assert (await first.claim()) is not None
    survivor = BuildQueue(sessions, _settings(name="survivor", max_takeovers=1))
    await survivor.register()

    assert await survivor.take_over() == []
    build, version = await row(sessions, build_id)
    assert (build.status, build.builder_id) == ("queued", None)
    assert "builder first stopped before the build ended" in (build.message or "")
    assert version.status == VersionStatus.CREATED.value
    again = await survivor.claim()
    assert again is not None and again.attempt == 2 and again.note is not None

    # the survivor dies too (its heartbeat goes stale): no third builder gets it
    async with sessions.begin() as session:
        stale = datetime.now(UTC) - timedelta(seconds=120)
        await session.execute(
            update(BuilderProcess)
            .where(BuilderProcess.id == survivor.id)
            .values(heartbeat_at=stale, hostname="elsewhere")
        )
    third = BuildQueue(sessions, _settings(name="third", max_takeovers=1))
    await third.register()
    (settled,) = await third.take_over()
    assert not settled.succeeded
    build, version = await row(sessions, build_id)
    assert build.status == "failed" and "taken over 1 times already" in (build.message or "")
    assert version.status == VersionStatus.BUILD_FAILED.value
    assert await third.claim() is None


async def test_a_live_builders_build_stays_its_own(sessions: Sessions) -> None:
    (build_id,) = await queue_builds(sessions, 1)
    owner = BuildQueue(sessions, _settings(name="owner"))
    await owner.register()
    assert await owner.claim() is not None
    other = BuildQueue(sessions, _settings(name="other"))
    await other.register()
    assert await other.take_over() == []
    build, _ = await row(sessions, build_id)
    assert (build.status, build.builder_id) == ("running", owner.id)


async def test_a_version_already_ready_is_settled_not_built_again(sessions: Sessions) -> None:
    (build_id,) = await queue_builds(sessions, 1)
    gone = BuildQueue(sessions, _settings(name="gone"))
    await gone.register()
    assert await gone.claim() is not None
    await gone.stop()  # stopped between registering the version and recording the build's end
    build, version = await row(sessions, build_id)
    async with sessions.begin() as session:
        await session.execute(
            update(WorkflowVersion)
            .where(WorkflowVersion.id == version.id)
            .values(status=VersionStatus.READY.value)
        )
    other = BuildQueue(sessions, _settings(name="other"))
    await other.register()
    (settled,) = await other.take_over()
    assert settled.succeeded and settled.build_id == build_id
    build, version = await row(sessions, build_id)
    assert build.status == "succeeded" and version.status == VersionStatus.READY.value
    assert await other.claim() is None


async def test_hand_back_requeues_without_counting_a_take_over(sessions: Sessions) -> None:
    (build_id,) = await queue_builds(sessions, 1)
    stopping = BuildQueue(sessions, _settings(name="stopping"))
    await stopping.register()
    assert await stopping.claim() is not None
    assert await stopping.hand_back(build_id)
    build, version = await row(sessions, build_id)
    assert (build.status, build.builder_id, build.attempts, build.takeovers) == (
        "queued",
        None,
        1,
        0,
    )
    assert "handed back by builder stopping" in (build.message or "")
    assert version.status == VersionStatus.CREATED.value
    other = BuildQueue(sessions, _settings(name="other"))
    await other.register()
    claim = await other.claim()
    assert claim is not None and claim.attempt == 2 and claim.note is not None
    async with sessions() as session:
        names = set(await session.scalars(select(BuilderProcess.name)))
    assert names == {"stopping", "other"}


async def test_a_build_the_server_runs_in_process_is_never_claimed(sessions: Sessions) -> None:
    in_process, queued = await queue_builds(sessions, 2)
    async with sessions.begin() as session:
        await session.execute(
            update(Build).where(Build.id == in_process).values(claimed_at=datetime.now(UTC))
        )
    queue = BuildQueue(sessions, _settings(name="b"))
    await queue.register()
    assert await queue.queued() == 1
    claim = await queue.claim()
    assert claim is not None and claim.build_id == queued
    assert await queue.claim() is None


class _ClaimingWhileAnnounced:
    """A check-run reporter that, while the build is being announced, lets a builder try to
    claim it: a builder that claimed it then would start and finish it with no check run."""

    def __init__(self, queue: BuildQueue) -> None:
        self.queue = queue
        self.claimed_while_announcing: list[Claim | None] = []

    async def queued(self, build: BuildContext) -> int | None:
        self.claimed_while_announcing.append(await self.queue.claim())
        return 4242

    async def started(self, build: BuildContext) -> None:
        raise AssertionError("a server that does not build in-process starts nothing")

    async def finished(self, build: BuildContext, outcome: BuildOutcome) -> None:
        raise AssertionError("a server that does not build in-process finishes nothing")


async def test_a_build_is_claimable_only_once_its_check_run_is_announced(
    sessions: Sessions, tmp_path: Path
) -> None:
    await queue_builds(sessions, 0)  # the workspace and its workflow
    queue = BuildQueue(sessions, _settings(name="eager"))
    await queue.register()
    reporter = _ClaimingWhileAnnounced(queue)
    settings = Settings(data_dir=tmp_path, builds=BuildSettings(in_process=False))
    # recording a build touches neither blobs nor registration, and of the builder only its name
    unused: Any = None
    builder: Any = SimpleNamespace(name="buildkit")
    pipeline = BuildPipeline(settings, sessions, unused, unused, builder, reporter=reporter)

    info = await pipeline.trigger("wsp-q", "wf-q", commit_sha="0" * 40, trigger="push")

    assert reporter.claimed_while_announcing == [None]
    claim = await queue.claim()
    assert claim is not None and claim.build_id == info.id
    build, _ = await row(sessions, info.id)
    assert build.check_run_id == 4242
