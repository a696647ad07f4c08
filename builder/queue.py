"""The build queue as `conveyor builder` processes see it: who builds, claims, take-overs.

Builds are rows (`builds`); a builder claims the oldest queued one with `FOR UPDATE SKIP LOCKED`
(PostgreSQL; SQLite has one writer at a time) and a compare-and-set on its status, so several
builders share one queue and no build runs twice at once. Each builder has a row it heartbeats. A
build whose builder is gone (stopped, silent past `stale_after_seconds`, or a dead pid on this
host) goes back to the queue for another builder, `max_takeovers` times; a build that already got
as far as a ready or failed version is settled as such instead of being built again.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from builder.records import BuildStatus
from core.build_settings import BuilderSettings
from core.db.models import Build, BuilderProcess, WorkflowVersion
from core.domain import VersionStatus
from core.ids import new_id
from core.liveness import process_gone

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    build_id: str
    attempt: int  # 1 for the first builder to start it, 2 for the next (take-over, hand-back)
    note: str | None  # why it is being built again, for its log


@dataclass(frozen=True)
class Settled:
    """A vanished builder's build, ended without building again (its version got that far)."""

    build_id: str
    succeeded: bool
    message: str


_VERSION_DONE = {
    VersionStatus.READY.value: True,
    VersionStatus.BUILD_FAILED.value: False,
    VersionStatus.REGISTRATION_FAILED.value: False,
}


class BuildQueue:
    """This builder's row, and its claims on the queue."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: BuilderSettings
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self.id = new_id("bdr")
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.name = settings.name or f"{self.hostname}-{self.pid}"

    # -- membership -----------------------------------------------------------------------------

    async def register(self) -> None:
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            session.add(
                BuilderProcess(
                    id=self.id,
                    name=self.name[:200],
                    hostname=self.hostname[:200],
                    pid=self.pid,
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    async def heartbeat(self) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(BuilderProcess)
                .where(BuilderProcess.id == self.id)
                .values(heartbeat_at=datetime.now(UTC))
            )

    async def stop(self) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(BuilderProcess)
                .where(BuilderProcess.id == self.id)
                .values(stopped_at=datetime.now(UTC))
            )

    def _gone(self, builder: BuilderProcess, now: datetime) -> bool:
        stale = timedelta(seconds=self._settings.stale_after_seconds)
        return process_gone(
            builder, own_id=self.id, hostname=self.hostname, now=now, stale_after=stale
        )

    # -- claims ---------------------------------------------------------------------------------

    async def claim(self) -> Claim | None:
        """The oldest queued build, now running here; None when the queue is empty."""
        now = datetime.now(UTC)
        try:
            async with self._sessions.begin() as session:
                row = (
                    await session.execute(
                        select(Build.id, Build.version_id, Build.attempts, Build.message)
                        # a server that builds in-process claims its own builds as it records them
                        .where(Build.status == BuildStatus.QUEUED.value, Build.claimed_at.is_(None))
                        .order_by(Build.created_at, Build.id)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                ).first()
                if row is None:
                    return None
                build_id, version_id, attempts, message = row
                taken = await session.execute(
                    update(Build)
                    .where(
                        Build.id == build_id,
                        Build.status == BuildStatus.QUEUED.value,
                        Build.claimed_at.is_(None),
                    )
                    .values(
                        status=BuildStatus.RUNNING.value,
                        builder_id=self.id,
                        claimed_at=now,
                        attempts=Build.attempts + 1,
                    )
                )
                if _rowcount(taken) != 1:
                    return None  # another builder was first (SQLite: no row locks)
                await session.execute(
                    update(WorkflowVersion)
                    .where(WorkflowVersion.id == version_id)
                    .values(status=VersionStatus.BUILDING.value)
                )
        except OperationalError as exc:  # SQLite: another writer holds the database
            logger.debug("claim: database busy: %s", exc)
            return None
        attempt = (attempts or 0) + 1
        return Claim(build_id, attempt, message if attempt > 1 else None)

    async def take_held(self) -> list[str]:
        """Builds a server recorded and held past `hold_timeout_seconds` without announcing them
        (it died in between): held again, by this builder now, for it to announce and release.
        """
        now = datetime.now(UTC)
        again = now + timedelta(seconds=self._settings.hold_timeout_seconds)
        async with self._sessions.begin() as session:
            held = list(
                await session.scalars(
                    select(Build)
                    .where(
                        Build.status == BuildStatus.QUEUED.value,
                        Build.builder_id.is_(None),
                        Build.held_until.is_not(None),
                        Build.held_until < now,
                    )
                    .with_for_update(skip_locked=True)
                )
            )
            for build in held:
                build.held_until = again
        for build in held:
            logger.warning(
                "build %s was held past its time: builder %s releases it", build.id, self.name
            )
        return [build.id for build in held]

    async def release(self, build_id: str, check_run_id: int | None) -> None:
        """Let builders claim a held build (its check run, if one was announced, recorded)."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(Build)
                .where(Build.id == build_id, Build.status == BuildStatus.QUEUED.value)
                .values(claimed_at=None, held_until=None, check_run_id=check_run_id)
            )

    async def hand_back(self, build_id: str) -> bool:
        """Put a build this builder stopped back in the queue (SIGTERM past the grace time).

        False when its version got as far as ready or failed: the build is settled instead.
        Handing back does not count as a take-over.
        """
        async with self._sessions.begin() as session:
            build = await session.scalar(
                select(Build)
                .where(Build.id == build_id, Build.builder_id == self.id)
                .with_for_update()
            )
            if build is None or build.status != BuildStatus.RUNNING.value:
                return False
            version = await session.get_one(WorkflowVersion, build.version_id)
            if _settle(build, version, f"builder {self.name} stopped"):
                return False
            build.status, build.builder_id, build.claimed_at = BuildStatus.QUEUED.value, None, None
            build.message = f"handed back by builder {self.name}, which was stopping"
            version.status, version.message = VersionStatus.CREATED.value, None
        logger.warning("build %s handed back to the queue", build_id)
        return True

    async def take_over(self) -> list[Settled]:
        """Builds of builders that are gone: back to the queue, or settled, or failed."""
        now = datetime.now(UTC)
        async with self._sessions() as session:
            builders = list(await session.scalars(select(BuilderProcess)))
            gone = {b.id: b.name for b in builders if self._gone(b, now)}
            if not gone:
                return []
            orphans = list(
                await session.execute(
                    select(Build.id, Build.builder_id).where(
                        Build.status == BuildStatus.RUNNING.value,
                        Build.builder_id.in_(list(gone)),
                    )
                )
            )
        settled = []
        for build_id, owner in orphans:
            if owner is None:
                continue
            outcome = await self._take_over_one(build_id, owner, gone[owner])
            if outcome is not None:
                settled.append(outcome)
        return settled

    async def _take_over_one(self, build_id: str, owner: str, name: str) -> Settled | None:
        async with self._sessions.begin() as session:
            build = await session.scalar(
                select(Build)
                .where(
                    Build.id == build_id,
                    Build.builder_id == owner,
                    Build.status == BuildStatus.RUNNING.value,
                )
                .with_for_update(skip_locked=True)
            )
            if build is None:
                return None  # another builder is on it
            version = await session.get_one(WorkflowVersion, build.version_id)
            why = f"builder {name} stopped before the build ended"
            ended = _settle(build, version, why)
            if ended:
                logger.warning("build %s: %s; %s", build_id, why, build.message)
                return Settled(build_id, build.status == BuildStatus.SUCCEEDED.value, why)
            if (build.takeovers or 0) >= self._settings.max_takeovers:
                message = f"{why}, and it was taken over {build.takeovers} times already"
                build.status, build.message = BuildStatus.FAILED.value, message
                build.finished_at = datetime.now(UTC)
                version.status, version.message = VersionStatus.BUILD_FAILED.value, message
                logger.warning("build %s failed: %s", build_id, message)
                return Settled(build_id, False, message)
            build.status, build.builder_id, build.claimed_at = BuildStatus.QUEUED.value, None, None
            build.takeovers = (build.takeovers or 0) + 1
            build.message = f"taken over: {why}"
            version.status, version.message = VersionStatus.CREATED.value, None
        logger.warning("build %s back in the queue: %s", build_id, why)
        return None

    async def builders(self) -> list[BuilderProcess]:
        async with self._sessions() as session:
            return list(await session.scalars(select(BuilderProcess)))

    async def queued(self) -> int:
        """Builds waiting for a builder."""
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count()).where(
                    Build.status == BuildStatus.QUEUED.value, Build.claimed_at.is_(None)
                )
            )
            return int(count or 0)


def _settle(build: Build, version: WorkflowVersion, why: str) -> bool:
    """End `build` by its version's status when that is final (the builder got that far)."""
    done = _VERSION_DONE.get(version.status)
    if done is None:
        return False
    build.status = (BuildStatus.SUCCEEDED if done else BuildStatus.FAILED).value
    build.message = version.message if not done else f"{why}; its version was already ready"
    build.finished_at = datetime.now(UTC)
    return True


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))
