"""One recorded build, run to its end: fetch the commit, build, register, report.

The same steps whether the server builds in-process or a `conveyor builder` claimed the build.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from builder.base import Builder, BuildFailed, BuildRequest
from builder.catalog import DEFAULT_START_COMMAND
from builder.git_access import access_for
from builder.log import BuildLog
from builder.records import BuildStatus
from builder.repo_policy import RepositoryRefused
from builder.reporter import BuildContext, BuildOutcome, BuildReporter, NoReporter, TokenSource
from builder.source import fetch_commit
from core.blobs.base import BlobStore
from core.db.models import Build, Workflow, WorkflowVersion
from core.domain import VersionInfo, VersionStatus
from core.secrets import SecretBox, SecretsUnreadable
from core.settings import Settings
from scheduler.registration import Registrar, registration_log_key

logger = logging.getLogger("builder.pipeline")

T = TypeVar("T")

STEPS = 4  # fetch, environment, build command, register


@dataclass(frozen=True)
class ExecutionServices:
    """What running a build needs besides the build itself."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    registrar: Registrar
    builder: Builder
    reporter: BuildReporter = field(default_factory=NoReporter)
    tokens: TokenSource | None = None


async def build_context(sessions: async_sessionmaker[AsyncSession], build_id: str) -> BuildContext:
    """What reporters need to know of a build, read from the database."""
    async with sessions() as session:
        build = await session.get_one(Build, build_id)
        workflow = await session.get_one(Workflow, build.workflow_id)
        return BuildContext(
            build.id,
            workflow.slug,
            workflow.repo_url,
            build.commit_sha,
            workflow.installation_id,
            build.check_run_id,
        )


class BuildExecution:
    """Runs builds already recorded (and claimed, for a builder process)."""

    def __init__(self, services: ExecutionServices) -> None:
        self._services = services
        self._settings = services.settings
        self._sessions = services.sessions
        self._blobs = services.blobs
        self._reporter = services.reporter

    @property
    def checkouts(self) -> Path:
        return self._settings.data_dir / "checkouts"

    async def run(self, build_id: str, *, note: str | None = None, attempt: int = 1) -> None:
        """Run the build to its end; any failure ends in the build's status, never raised.

        Cancellation is the exception: the caller stops the build (to hand it back) and the
        build stays as it was, for the caller to settle.
        """
        context = await build_context(self._sessions, build_id)
        try:
            await self._build(context, note, attempt)
        except Exception as exc:
            logger.exception("build %s of workflow %s crashed", build_id, context.workflow_slug)
            message = f"internal error: {exc}"
            async with self._sessions.begin() as session:
                build = await session.get_one(Build, build_id)
                version = await session.get_one(WorkflowVersion, build.version_id)
                # A version that got as far as ready (or failed on its own) keeps its status.
                if version.status in (VersionStatus.CREATED.value, VersionStatus.BUILDING.value):
                    version.status, version.message = VersionStatus.BUILD_FAILED.value, message
            await self._finish(context, None, message, None)

    async def _build(self, context: BuildContext, note: str | None, attempt: int) -> None:
        build_id = context.build_id
        async with self._sessions.begin() as session:
            build = await session.get_one(Build, build_id)
            build.status, build.started_at = BuildStatus.RUNNING.value, datetime.now(UTC)
            version = await session.get_one(WorkflowVersion, build.version_id)
            version.status = VersionStatus.BUILDING.value
            workflow = await session.get_one(Workflow, build.workflow_id)
            version_id, root_dir = version.id, workflow.root_dir
            build_command, env_token = workflow.build_command, version.env_vars
            workspace_id = workflow.workspace_id
            start_command, runtime = version.start_command, workflow.runtime
        await self.report("started", self._reporter.started(context))
        log = BuildLog(self._blobs, build_id, steps=STEPS)
        if note:
            log.line(f"==> {note}")
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
                    workspace_id=workspace_id,
                    runtime=runtime,
                    start_command_is_default=start_command == DEFAULT_START_COMMAND,
                )
                built = await self._services.builder.build(request, log)
            except BuildFailed as exc:
                log.line(f"error: {exc}")
                await self._fail_version(version_id, VersionStatus.BUILD_FAILED, str(exc))
                await self._finish(context, log, f"build failed: {exc}", None)
                return
            async with self._sessions.begin() as session:
                built_version = await session.get_one(WorkflowVersion, version_id)
                built_version.root_dir = str(source)
                if built.start_command:
                    built_version.start_command = start_command = built.start_command
            log.progress(f"registering tasks with `{start_command}`")
            # a build started again may have left a register step out there: a key of its own
            version_info = await self._services.registrar.register_version(
                version_id,
                env=built.env,
                image=built.image,
                executor=built.executor,
                attempt=attempt - 1,
            )
            await self._copy_registration_log(version_id, log)
            await self._finish(context, log, version_info.message, version_info)
        finally:
            await log.close()

    def _env_vars(self, token: str | None, context: BuildContext) -> dict[str, str]:
        try:
            return SecretBox.from_settings(self._settings).open(
                token, f"workflow {context.workflow_slug!r}"
            )
        except SecretsUnreadable as exc:
            raise BuildFailed(exc.message) from None

    async def _fetch(
        self, context: BuildContext, version_id: str, root_dir: str, log: BuildLog
    ) -> Path:
        assert context.repo_url is not None and context.commit_sha is not None
        log.progress(f"fetching {context.repo_url} at {context.commit_sha}")
        token = None
        tokens = self._services.tokens
        if context.installation_id is not None and tokens is not None:
            token = await tokens.token_for(context.installation_id)
        checkout = self.checkouts / version_id
        # what a builder stopped halfway left behind (the build is being run again)
        await asyncio.to_thread(shutil.rmtree, checkout, True)
        try:
            access = await access_for(self._settings, context.repo_url, token)
        except RepositoryRefused as exc:
            raise BuildFailed(exc.message) from None
        await fetch_commit(
            context.repo_url,
            context.commit_sha,
            checkout,
            log=log,
            settings=self._settings.builds,
            access=access,
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
        context: BuildContext,
        log: BuildLog | None,
        message: str | None,
        version: VersionInfo | None,
    ) -> None:
        ok = version is not None and version.status is VersionStatus.READY
        async with self._sessions.begin() as session:
            build = await session.get_one(Build, context.build_id)
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
            limit = self._settings.builds.log_tail_chars
            tail = await log.tail(limit) if log else (message or "")
            title = message.splitlines()[0][:200] if message else "build failed"
            outcome = BuildOutcome(False, title, f"{message or ''}\n\nLog tail:\n```\n{tail}\n```")
        logger.info(
            "build %s of workflow %s %s: %s",
            context.build_id,
            context.workflow_slug,
            "succeeded" if ok else "failed",
            message or "ok",
        )
        await self.report("finished", self._reporter.finished(context, outcome))

    async def report_settled(self, build_id: str, succeeded: bool, message: str) -> None:
        """Tell GitHub how a build ended that another builder left (see builder/queue.py)."""
        context = await build_context(self._sessions, build_id)
        outcome = BuildOutcome(succeeded, message[:200], message)
        await self.report("finished", self._reporter.finished(context, outcome))

    async def announce(self, build_id: str) -> int | None:
        """Report a recorded build as queued (a GitHub check run); its id, if one was made."""
        context = await build_context(self._sessions, build_id)
        return await self.report("queued", self._reporter.queued(context))

    async def report(self, what: str, call: Awaitable[T]) -> T | None:
        # GitHub being down must not fail a build that is otherwise fine.
        try:
            return await call
        except Exception:
            logger.exception("reporting build progress (%s) failed", what)
            return None
