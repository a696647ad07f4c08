"""A build from trigger to active version: fetch the commit, build, register, report."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from builder.base import Builder, BuildFailed, BuildRequest
from builder.log import BuildLog, build_log_key
from builder.records import BuildInfo, BuildStatus, build_info
from builder.reporter import BuildContext, BuildOutcome, BuildReporter, NoReporter, TokenSource
from builder.source import branch_head, fetch_commit
from core.blobs.base import BlobStore
from core.db.models import Build, Workflow, WorkflowVersion
from core.domain import VersionInfo, VersionStatus
from core.errors import Conflict, NotFound
from core.ids import new_id
from core.secrets import SecretBox, SecretsUnreadable
from core.settings import Settings
from scheduler.registration import Registrar, registration_log_key

logger = logging.getLogger(__name__)

T = TypeVar("T")

_STEPS = 4  # fetch, environment, build command, register


# a build older than its time limits by this much cannot still be running anywhere
_STALE_MARGIN = 300.0
_UNFINISHED_VERSION = (
    VersionStatus.CREATED.value,
    VersionStatus.BUILDING.value,
    VersionStatus.REGISTERING.value,
)


class BuildPipeline:
    """Starts builds in the background; `wait()` and `drain()` let callers and tests follow."""

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
        self._running: dict[str, asyncio.Task[None]] = {}

    @property
    def checkouts(self) -> Path:
        return self._settings.data_dir / "checkouts"

    async def fail_stale(self, now: datetime) -> int:
        """Fail builds no process can still be running: older than every build's time limit.

        A build runs in the process that started it; if that process died, its build would stay
        `running` (and its version `building`) for ever. Checked whenever a build starts.
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

    async def trigger(
        self, workspace_id: str, workflow_id: str, *, commit_sha: str, trigger: str
    ) -> BuildInfo:
        """Record a new version and its build of `commit_sha`, and start building it."""
        now = datetime.now(UTC)
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
        check_run_id = await self._report("queued", self._reporter.queued(context))
        if check_run_id is not None:
            async with self._sessions.begin() as session:
                (await session.get_one(Build, build.id)).check_run_id = check_run_id
            context = replace(context, check_run_id=check_run_id)
        self._running[build.id] = asyncio.create_task(self._run(build.id, workflow_id, context))
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
            try:
                commit_sha = await branch_head(
                    url, branch, settings=self._settings.builds, token=token
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
            return build_info(row)

    # -- one build ------------------------------------------------------------------------------

    def _env_vars(self, token: str | None, context: BuildContext) -> dict[str, str]:
        try:
            return SecretBox.from_settings(self._settings).open(
                token, f"workflow {context.workflow_slug!r}"
            )
        except SecretsUnreadable as exc:
            raise BuildFailed(exc.message) from None

    async def _run(self, build_id: str, workflow_id: str, context: BuildContext) -> None:
        try:
            async with self._slots:
                await self._build(build_id, workflow_id, context)
        except Exception as exc:
            logger.exception("build %s of workflow %s crashed", build_id, context.workflow_slug)
            message = f"internal error: {exc}"
            async with self._sessions.begin() as session:
                build = await session.get_one(Build, build_id)
                version = await session.get_one(WorkflowVersion, build.version_id)
                # A version that got as far as ready (or failed on its own) keeps its status.
                if version.status in (VersionStatus.CREATED.value, VersionStatus.BUILDING.value):
                    version.status, version.message = VersionStatus.BUILD_FAILED.value, message
            await self._finish(build_id, context, None, message, None)
        finally:
            self._running.pop(build_id, None)

    async def _build(self, build_id: str, workflow_id: str, context: BuildContext) -> None:
        async with self._sessions.begin() as session:
            build = await session.get_one(Build, build_id)
            build.status, build.started_at = BuildStatus.RUNNING.value, datetime.now(UTC)
            version = await session.get_one(WorkflowVersion, build.version_id)
            version.status = VersionStatus.BUILDING.value
            workflow = await session.get_one(Workflow, workflow_id)
            version_id, root_dir = version.id, workflow.root_dir
            build_command, env_token = workflow.build_command, version.env_vars
            start_command = version.start_command
        await self._report("started", self._reporter.started(context))
        log = BuildLog(self._blobs, build_id, steps=_STEPS)
        try:
            try:
                source = await self._fetch(context, version_id, root_dir, log)
                request = BuildRequest(
                    build_id=build_id,
                    workflow_slug=context.workflow_slug,
                    source=source,
                    build_command=build_command,
                    env_vars=self._env_vars(env_token, context),
                    commit_sha=context.commit_sha,
                )
                built = await self._builder.build(request, log)
            except BuildFailed as exc:
                log.line(f"error: {exc}")
                await self._fail_version(version_id, VersionStatus.BUILD_FAILED, str(exc))
                await self._finish(build_id, context, log, f"build failed: {exc}", None)
                return
            async with self._sessions.begin() as session:
                (await session.get_one(WorkflowVersion, version_id)).root_dir = str(source)
            log.progress(f"registering tasks with `{start_command}`")
            version_info = await self._registrar.register_version(
                version_id, env=built.env, image=built.image, executor=built.executor
            )
            await self._copy_registration_log(version_id, log)
            await self._finish(build_id, context, log, version_info.message, version_info)
        finally:
            await log.close()

    async def _fetch(
        self, context: BuildContext, version_id: str, root_dir: str, log: BuildLog
    ) -> Path:
        assert context.repo_url is not None and context.commit_sha is not None
        log.progress(f"fetching {context.repo_url} at {context.commit_sha}")
        token = None
        if context.installation_id is not None and self._tokens is not None:
            token = await self._tokens.token_for(context.installation_id)
        checkout = self.checkouts / version_id
        await fetch_commit(
            context.repo_url,
            context.commit_sha,
            checkout,
            log=log,
            settings=self._settings.builds,
            token=token,
        )
        source = (checkout / root_dir).resolve()
        if not source.is_relative_to(checkout.resolve()) or not source.is_dir():
            raise BuildFailed(f"root dir {root_dir!r} is not a folder of the repository")
        return source

    async def _copy_registration_log(self, version_id: str, log: BuildLog) -> None:
        with contextlib.suppress(KeyError, FileNotFoundError):
            log.write(await self._blobs.get(registration_log_key(version_id)))

    async def _fail_version(self, version_id: str, status: VersionStatus, message: str) -> None:
        async with self._sessions.begin() as session:
            version = await session.get_one(WorkflowVersion, version_id)
            version.status, version.message = status.value, message

    async def _finish(
        self,
        build_id: str,
        context: BuildContext,
        log: BuildLog | None,
        message: str | None,
        version: VersionInfo | None,
    ) -> None:
        ok = version is not None and version.status is VersionStatus.READY
        async with self._sessions.begin() as session:
            build = await session.get_one(Build, build_id)
            build.status = (BuildStatus.SUCCEEDED if ok else BuildStatus.FAILED).value
            build.message, build.finished_at = message, datetime.now(UTC)
        if ok and version is not None:
            tasks = ", ".join(version.task_names)
            summary = (
                f"Version {version.id} is active with {len(version.task_names)} tasks: {tasks}"
            )
            outcome = BuildOutcome(True, f"{len(version.task_names)} tasks registered", summary)
            if log is not None:
                log.line(f"==> done: {summary}")
        else:
            tail = await log.tail(self._settings.builds.log_tail_chars) if log else (message or "")
            title = message.splitlines()[0][:200] if message else "build failed"
            outcome = BuildOutcome(False, title, f"{message or ''}\n\nLog tail:\n```\n{tail}\n```")
        logger.info(
            "build %s of workflow %s %s: %s",
            build_id,
            context.workflow_slug,
            "succeeded" if ok else "failed",
            message or "ok",
        )
        await self._report("finished", self._reporter.finished(context, outcome))

    async def _report(self, what: str, call: Awaitable[T]) -> T | None:
        # GitHub being down must not fail a build that is otherwise fine.
        try:
            return await call
        except Exception:
            logger.exception("reporting build progress (%s) failed", what)
            return None
