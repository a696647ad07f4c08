"""Registering a workflow version: run its start command in register mode, keep its task list."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.blobs.base import BlobStore
from core.data_dir import create_private_file
from core.db.models import Task, Workflow, WorkflowVersion
from core.domain import TaskSpec, VersionInfo, VersionStatus
from core.errors import InvalidRequest
from core.ids import new_id
from core.secrets import SecretBox, SecretsUnreadable
from core.settings import Settings
from scheduler import schedules
from scheduler.agent import Agent, Registration
from scheduler.executors.base import AttemptSpec, Executor, Mode, VersionSpec, retire_version
from scheduler.executors.environment import variable_name_problem
from scheduler.registration_payload import InvalidRegistration
from scheduler.scheduler import VersionCommand, VersionLookup

logger = logging.getLogger(__name__)

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
_LOG_TAIL_CHARS = 4000


def registration_log_key(version_id: str) -> str:
    """The register step's captured output (the builder copies it into the build's log)."""
    return f"registrations/{version_id}.log"


def slugify(name: str) -> str:
    """A workflow slug from a name or a folder's: lower case, runs of other characters to `-`."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:100].strip("-")
    return slug or "workflow"


def _task_row(spec: TaskSpec, version_id: str, workflow_id: str, now: datetime) -> Task:
    options = asdict(spec.options)
    return Task(
        id=new_id("tsk"),
        version_id=version_id,
        workflow_id=workflow_id,
        name=spec.name,
        options=json.dumps({k: v for k, v in options.items() if v is not None}),
        parameters=json.dumps([asdict(p) for p in spec.parameters]),
        description=spec.description,
        language=spec.language,
        created_at=now,
        kind=spec.kind,
    )


def _fingerprint(source_digest: str, version: WorkflowVersion, specs: list[TaskSpec]) -> str:
    """What makes a registration what it is: the files, how they start, what they registered.

    The environment counts as the built one (paths) and the workflow's env vars as stored:
    encrypted, so no secret is hashed, and re-saving them changes the token and so this.
    """
    described = {
        "source": source_digest,
        "start_command": version.start_command,
        "root_dir": version.root_dir,
        "image": version.image,
        "built_env": version.env,
        "env_vars": version.env_vars,
        # a language is left out when unknown, so fingerprints taken before it was kept still match
        "tasks": [
            {k: v for k, v in asdict(spec).items() if k != "language" or v is not None}
            for spec in specs
        ],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


class Registrar(VersionLookup):
    """Creates versions by registration and tells the scheduler how to start them."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        agent: Agent,
        executor: Executor,
        blobs: BlobStore,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._agent = agent
        self._executor = executor
        self._blobs = blobs
        self._commands: dict[str, VersionCommand] = {}
        self._secrets: SecretBox | None = None

    def _secret_box(self) -> SecretBox:
        # Made on first use: reading or creating the key file is I/O the constructor must not do.
        if self._secrets is None:
            self._secrets = SecretBox.from_settings(self._settings)
        return self._secrets

    async def command(self, version_id: str) -> VersionCommand:
        cached = self._commands.get(version_id)
        if cached is not None:
            return cached
        async with self._sessions() as session:
            version = await session.get_one(WorkflowVersion, version_id)
        command = VersionCommand(
            version.start_command,
            Path(version.root_dir),
            self._version_env(version),
            image=version.image,
        )
        self._commands[version_id] = command
        return command

    def _version_env(self, version: WorkflowVersion) -> dict[str, str]:
        """The workflow's env vars, then the built environment's (its PATH must come first)."""
        built: dict[str, str] = json.loads(version.env) if version.env else {}
        owner = f"workflow {version.workflow_id}, version {version.id}"
        return {**self._secret_box().open(version.env_vars, owner), **built}

    async def register(
        self,
        workspace_id: str,
        path: Path,
        *,
        slug: str,
        start_command: str,
        env: dict[str, str] | None = None,
        env_vars: Mapping[str, str] | None = None,
        source_digest: str | None = None,
    ) -> VersionInfo:
        """Register the folder `path` directly as a new version of workflow `slug` (dev).

        `env_vars` replaces the workflow's own variables (stored encrypted) when given. With
        `source_digest` (a hash of the folder's files), a registration identical to the active
        version's (same files, command, environment and tasks) keeps that version instead of
        adding one: restarting `conveyor dev` on unchanged code makes no version.
        """
        if not _SLUG.match(slug):
            raise InvalidRequest(
                f"workflow slug {slug!r} must be lower-case letters, digits and dashes"
            )
        if not await asyncio.to_thread(path.is_dir):
            raise InvalidRequest(f"{path} is not a folder")
        for name in env_vars or {}:
            problem = variable_name_problem(name)
            if problem is not None:
                raise InvalidRequest(f"env var {problem}")
        root = await asyncio.to_thread(path.resolve)
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            workflow = await session.scalar(
                select(Workflow).where(Workflow.workspace_id == workspace_id, Workflow.slug == slug)
            )
            if workflow is None:
                workflow = Workflow(
                    id=new_id("wf"),
                    workspace_id=workspace_id,
                    slug=slug,
                    name=slug,
                    start_command=start_command,
                    root_dir=str(root),
                    created_at=now,
                )
                session.add(workflow)
            workflow.start_command, workflow.root_dir = start_command, str(root)
            if env_vars is not None:
                workflow.env_vars = self._sealed(workflow, env_vars)
            version = WorkflowVersion(
                id=new_id("wfv"),
                workflow_id=workflow.id,
                status=VersionStatus.CREATED.value,
                root_dir=str(root),
                start_command=start_command,
                created_at=now,
                env_vars=workflow.env_vars,
            )
            session.add(version)
        return await self.register_version(version.id, env=env, source_digest=source_digest)

    def _sealed(self, workflow: Workflow, env_vars: Mapping[str, str]) -> str:
        """The variables sealed, or the stored token when it already holds exactly them.

        Sealing again would change the token, and with it the version's fingerprint: a
        restart with the same variables would then add a version.
        """
        box = self._secret_box()
        if workflow.env_vars is not None:
            with contextlib.suppress(SecretsUnreadable):
                if box.open(workflow.env_vars, f"workflow {workflow.slug!r}") == dict(env_vars):
                    return workflow.env_vars
        return box.seal(dict(env_vars))

    async def register_version(
        self,
        version_id: str,
        *,
        env: dict[str, str] | None = None,
        image: str | None = None,
        executor: Executor | None = None,
        source_digest: str | None = None,
        attempt: int = 0,
    ) -> VersionInfo:
        """Run an existing version's start command in register mode in its built environment.

        `env` is that environment (a venv's PATH and VIRTUAL_ENV, …): it is stored with the
        version and used for every attempt. `executor` runs the register step when the version
        does not run as a local process (an image). On success the version becomes the active
        one; on failure it is `registration_failed` and the active version stays as it was.
        `attempt` > 0 registers again a version whose earlier register step may still be out
        there (its builder died): the step gets a key of its own, never the old one's container,
        dispatch or socket.
        """
        async with self._sessions.begin() as session:
            version = await session.get_one(WorkflowVersion, version_id)
            version.status = VersionStatus.REGISTERING.value
            version.env = json.dumps(env or {}, sort_keys=True)
            version.image = image
            workflow = await session.get_one(Workflow, version.workflow_id)
            slug, workflow_id, workspace_id = workflow.slug, workflow.id, workflow.workspace_id
            registered = version
        self._commands.pop(version_id, None)
        command = await self.command(version_id)
        runner = executor or self._executor
        try:
            specs = await self._collect(version_id, command, runner, attempt)
        except InvalidRegistration as exc:
            await retire_version(runner, version_id)
            return await self._fail(version_id, str(exc))
        fingerprint = _fingerprint(source_digest, registered, specs) if source_digest else None
        if fingerprint is not None:
            kept = await self._keep_if_unchanged(version_id, workflow_id, fingerprint)
            if kept is not None:
                logger.info("workflow %s unchanged: version %s stays active", slug, kept.id)
                await retire_version(runner, version_id)
                return kept
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            for spec in specs:
                session.add(_task_row(spec, version_id, workflow_id, now))
            stored = await session.get_one(WorkflowVersion, version_id)
            stored.status = VersionStatus.READY.value
            stored.message = None
            stored.fingerprint = fingerprint
            active = await session.get_one(Workflow, workflow_id)
            superseded = active.active_version_id
            active.active_version_id = version_id
            await schedules.sync(session, workspace_id, workflow_id, specs, now)
        logger.info("workflow %s version %s ready: %d tasks", slug, version_id, len(specs))
        if superseded and superseded != version_id:
            await retire_version(runner, superseded)
        if executor is None:
            await self._prepare(version_id)
        return VersionInfo(
            version_id,
            workflow_id,
            VersionStatus.READY,
            stored.created_at,
            None,
            tuple(sorted(s.name for s in specs)),
        )

    async def prepare_active(self) -> None:
        """Get the executor ready for every workflow's active version (at start-up)."""
        async with self._sessions() as session:
            active = await session.scalars(
                select(Workflow.active_version_id).where(Workflow.active_version_id.is_not(None))
            )
            version_ids = [v for v in active if v is not None]
        for version_id in version_ids:
            await self._prepare(version_id)

    async def _prepare(self, version_id: str) -> None:
        command = await self.command(version_id)
        if command.image is None:  # an image's attempts run where the executor puts them
            await self._executor.prepare(
                VersionSpec(version_id, command.start_command, command.root_dir, command.env)
            )

    async def _keep_if_unchanged(
        self, version_id: str, workflow_id: str, fingerprint: str
    ) -> VersionInfo | None:
        """The active version when it has this fingerprint; the new one is then dropped."""
        async with self._sessions.begin() as session:
            workflow = await session.get_one(Workflow, workflow_id)
            active_id = workflow.active_version_id
            active = await session.get(WorkflowVersion, active_id) if active_id else None
            if active is None or active.fingerprint != fingerprint:
                return None
            new = await session.get_one(WorkflowVersion, version_id)
            await session.delete(new)
            names = await session.scalars(select(Task.name).where(Task.version_id == active.id))
            kept = VersionInfo(
                active.id,
                workflow_id,
                VersionStatus(active.status),
                active.created_at,
                active.message,
                tuple(sorted(names)),
            )
        self._commands.pop(version_id, None)
        return kept

    async def _fail(self, version_id: str, message: str) -> VersionInfo:
        async with self._sessions.begin() as session:
            version = await session.get_one(WorkflowVersion, version_id)
            version.status = VersionStatus.REGISTRATION_FAILED.value
            version.message = message
        logger.warning("version %s: registration failed: %s", version_id, message)
        return VersionInfo(
            version_id,
            version.workflow_id,
            VersionStatus.REGISTRATION_FAILED,
            version.created_at,
            message,
            (),
        )

    async def _collect(
        self, version_id: str, command: VersionCommand, executor: Executor, attempt: int = 0
    ) -> list[TaskSpec]:
        start_command = command.start_command
        registration = Registration()
        log_key = registration_log_key(version_id)
        key = version_id if attempt == 0 else f"{version_id}-r{attempt}"
        socket_path = await self._agent.open(
            key, attempt_id=None, run_id=None, registration=registration
        )
        spec = AttemptSpec(
            attempt_id=key,
            run_id="",
            attempt=attempt,
            mode=Mode.REGISTER,
            start_command=start_command,
            cwd=command.root_dir,
            socket_path=socket_path,
            log_path=create_private_file(self._blobs.staging_path(log_key)),
            plan=self._settings.plan(None),
            env=command.env,
            version_id=version_id,
            image=command.image,
        )
        try:
            try:
                handle = await executor.start(spec)
            except (OSError, ValueError) as exc:
                raise InvalidRegistration(f"could not run {start_command!r}: {exc}") from None
            exited = asyncio.ensure_future(executor.wait(handle))
            try:
                waiters: list[asyncio.Future[Any]] = [registration.done, exited]
                done, _ = await asyncio.wait(
                    waiters,
                    timeout=self._settings.limits.registration_timeout_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if registration.done in done or registration.done.done():
                    return registration.done.result()
                if exited in done:
                    state = exited.result()
                    raise InvalidRegistration(
                        f"{start_command!r} exited (code {state.exit_code}) without registering "
                        f"tasks:\n{await self._log_tail(log_key)}"
                    )
                raise InvalidRegistration(
                    f"{start_command!r} registered nothing within "
                    f"{self._settings.limits.registration_timeout_seconds:g} s"
                )
            finally:
                if not exited.done():
                    await executor.stop(handle, 2.0)
                    with contextlib.suppress(Exception):
                        await exited
        finally:
            await self._agent.close(key)
            # the process is gone: a store that stages remotely (S3) uploads the log now
            await self._blobs.commit_staged(log_key)

    async def _log_tail(self, log_key: str) -> str:
        try:
            data = await self._blobs.get(log_key)
        except KeyError:
            return ""
        return data.decode(errors="replace")[-_LOG_TAIL_CHARS:].strip()
