"""A build from trigger to active version: fetch the commit, build, register, report."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from builder.base import Builder, BuildFailed
from builder.execution import BuildExecution, ExecutionServices
from builder.git_access import access_for
from builder.log import build_log_key
from builder.records import BuildInfo, BuildStatus, build_info
from builder.reporter import BuildContext, BuildReporter, NoReporter, TokenSource
from builder.source import branch_head
from core.blobs.base import BlobStore
from core.db.models import Build, BuilderProcess, Workflow, WorkflowVersion
from core.domain import VersionStatus
from core.errors import Conflict, NotFound
from core.ids import new_id
from core.settings import Settings
from scheduler.registration import Registrar

logger = logging.getLogger(__name__)

# a build older than its time limits by this much cannot still be running anywhere
_STALE_MARGIN = 300.0
_UNFINISHED_BUILD = (BuildStatus.QUEUED, BuildStatus.RUNNING)
_WAIT_POLL_SECONDS = 0.2
_UNFINISHED_VERSION = (
    VersionStatus.CREATED.value,
    VersionStatus.BUILDING.value,
    VersionStatus.REGISTERING.value,
)


class BuildPipeline:
    """Records builds and, in-process, runs them in the background; `wait()` and `drain()` let
    callers and tests follow. With `builds.in_process` off, `conveyor builder` runs them."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        registrar: Registrar,
        builder: Builder,
        *,
        reporter: BuildReporter | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._blobs = blobs
        self._registrar = registrar
        self._builder = builder
        self._reporter = reporter or NoReporter()
        self._tokens = tokens
        self._slots = asyncio.Semaphore(settings.builds.parallel_builds)
        self._hold = timedelta(seconds=settings.builder.hold_timeout_seconds)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._execution = BuildExecution(
            ExecutionServices(settings, sessions, blobs, registrar, builder, self._reporter, tokens)
        )

    @property
    def checkouts(self) -> Path:
        return self._execution.checkouts

    @property
    def in_process(self) -> bool:
        """Whether this process runs the builds it records (else `conveyor builder` does)."""
        return self._settings.builds.in_process

    async def fail_stale(self, now: datetime) -> int:
        """Fail in-process builds no process can still be running: older than every time limit.

        A build run in-process belongs to the process that started it; if that process died, its
        build would stay `running` (and its version `building`) for ever. Checked whenever a build
        starts. Builds of `conveyor builder` processes are theirs to take over (builder/queue.py).
        """
        limits = self._settings.builds
        horizon = now - timedelta(
            seconds=limits.build_timeout_seconds + limits.clone_timeout_seconds + _STALE_MARGIN
        )
        message = "interrupted: the process building it stopped before the build ended"
        async with self._sessions.begin() as session:
            stale = list(
                await session.scalars(
                    select(Build)
                    .where(
                        Build.status.in_([BuildStatus.QUEUED.value, BuildStatus.RUNNING.value]),
                        Build.created_at < horizon,
                        Build.builder_id.is_(None),
                    )
                    .with_for_update(skip_locked=True)
                )
            )
            stale = [build for build in stale if build.id not in self._running]
            for build in stale:
                build.status, build.message, build.finished_at = (
                    BuildStatus.FAILED.value,
                    message,
                    now,
                )
                version = await session.get_one(WorkflowVersion, build.version_id)
                if version.status in _UNFINISHED_VERSION:
                    version.status, version.message = VersionStatus.BUILD_FAILED.value, message
                logger.warning("build %s: %s", build.id, message)
        return len(stale)

    async def trigger_push(
        self, workspace_id: str, workflow_id: str, commit_sha: str
    ) -> tuple[BuildInfo, bool]:
        """A build of a pushed commit and whether it is new: a commit already built for the
        workflow answers with that build (a delivery sent again under a new id builds nothing)."""
        existing = await self._build_of_commit(workflow_id, commit_sha)
        if existing is not None:
            return existing, False
        key = f"{workflow_id}@{commit_sha}"
        try:
            build = await self.trigger(
                workspace_id, workflow_id, commit_sha=commit_sha, trigger="push", push_key=key
            )
        except IntegrityError:  # the same push, delivered twice at once: the other one won
            existing = await self._build_of_commit(workflow_id, commit_sha)
            if existing is None:
                raise
            return existing, False
        return build, True

    async def _build_of_commit(self, workflow_id: str, commit_sha: str) -> BuildInfo | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(Build)
                .where(Build.workflow_id == workflow_id, Build.commit_sha == commit_sha)
                .order_by(Build.created_at, Build.id)
                .limit(1)
            )
            return build_info(row) if row is not None else None

    async def trigger(
        self,
        workspace_id: str,
        workflow_id: str,
        *,
        commit_sha: str,
        trigger: str,
        push_key: str | None = None,
    ) -> BuildInfo:
        """Record a new version and its build of `commit_sha`, and start building it."""
        now = datetime.now(UTC)
        if self.in_process:
            await self.fail_stale(now)
        async with self._sessions.begin() as session:
            workflow = await session.get(Workflow, workflow_id)
            if workflow is None or workflow.workspace_id != workspace_id:
                raise NotFound(f"workflow {workflow_id!r} not found")
            if not workflow.repo_url:
                raise Conflict(f"workflow {workflow.slug!r} has no repository to build")
            version = WorkflowVersion(
                id=new_id("wfv"),
                workflow_id=workflow.id,
                status=VersionStatus.CREATED.value,
                root_dir="",
                start_command=workflow.start_command,
                created_at=now,
                commit_sha=commit_sha,
                env_vars=workflow.env_vars,
            )
            build = Build(
                id=new_id("bld"),
                workflow_id=workflow.id,
                version_id=version.id,
                status=BuildStatus.QUEUED.value,
                trigger=trigger,
                commit_sha=commit_sha,
                builder=self._builder.name,
                log_key="",
                created_at=now,
                # Not claimable until its check run is announced: a builder claiming it earlier
                # would report to no check run. Built here, no `conveyor builder` may ever claim it.
                claimed_at=now,
                # should this process die before announcing it, a builder releases it then
                held_until=None if self.in_process else now + self._hold,
                push_key=push_key,
            )
            build.log_key = build_log_key(build.id)
            version.build_id = build.id
            session.add(version)
            await session.flush()
            session.add(build)
            context = BuildContext(
                build.id, workflow.slug, workflow.repo_url, commit_sha, workflow.installation_id
            )
        logger.info(
            "build %s of workflow %s at %s queued (%s)",
            build.id,
            context.workflow_slug,
            commit_sha,
            trigger,
        )
        check_run_id = await self._execution.report("queued", self._reporter.queued(context))
        if self.in_process and check_run_id is not None:
            async with self._sessions.begin() as session:
                (await session.get_one(Build, build.id)).check_run_id = check_run_id
        elif not self.in_process:
            async with self._sessions.begin() as session:
                # unless a builder found it held past its time and released it already
                await session.execute(
                    update(Build)
                    .where(Build.id == build.id, Build.held_until == build.held_until)
                    .values(check_run_id=check_run_id, claimed_at=None, held_until=None)
                )
        if self.in_process:
            self._running[build.id] = asyncio.create_task(self._run(build.id))
        # else: recorded as queued, a `conveyor builder` claims it
        return build_info(build)

    async def deploy(
        self, workspace_id: str, workflow_id: str, *, commit_sha: str | None, trigger: str = "api"
    ) -> BuildInfo:
        """Build `commit_sha`, or the tracked branch's head when None."""
        if commit_sha is None:
            async with self._sessions() as session:
                workflow = await session.get(Workflow, workflow_id)
                if workflow is None or workflow.workspace_id != workspace_id:
                    raise NotFound(f"workflow {workflow_id!r} not found")
                url, branch = workflow.repo_url, workflow.branch or "main"
                installation_id = workflow.installation_id
            if not url:
                raise Conflict(f"workflow {workflow_id!r} has no repository to build")
            token = None
            if installation_id is not None and self._tokens is not None:
                token = await self._tokens.token_for(installation_id)
            access = await access_for(self._settings, url, token)  # refused: a 400
            try:
                commit_sha = await branch_head(
                    url, branch, settings=self._settings.builds, access=access
                )
            except BuildFailed as exc:
                # the workflow's repository or branch, not the request, is what is wrong
                raise Conflict(str(exc)) from None
        return await self.trigger(workspace_id, workflow_id, commit_sha=commit_sha, trigger=trigger)

    async def wait(self, build_id: str, timeout: float) -> BuildInfo:
        task = self._running.get(build_id)
        if task is not None:
            await asyncio.wait_for(asyncio.shield(task), timeout)
            return await self.get(build_id)
        # run elsewhere (a builder process): its row says when it ends
        async with asyncio.timeout(timeout):
            while (info := await self.get(build_id)).status in _UNFINISHED_BUILD:
                await asyncio.sleep(_WAIT_POLL_SECONDS)
        return info

    async def drain(self) -> None:
        """Wait for every build this pipeline started."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def get(self, build_id: str) -> BuildInfo:
        async with self._sessions() as session:
            row = await session.get(Build, build_id)
            if row is None:
                raise NotFound(f"build {build_id!r} not found")
            builder = await session.get(BuilderProcess, row.builder_id) if row.builder_id else None
            return build_info(row, builder.name if builder else None)

    async def _run(self, build_id: str) -> None:
        try:
            async with self._slots:
                await self._execution.run(build_id)
        finally:
            self._running.pop(build_id, None)
