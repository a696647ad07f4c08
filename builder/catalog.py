"""Workflows as resources: create, change, delete, read; their builds; pushes to match."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from builder.records import BuildInfo, build_info, repo_full_name
from builder.repo_policy import RepoPolicy
from core.db.models import (
    Build,
    BuilderProcess,
    GitHubInstallationWorkspace,
    Task,
    TaskRun,
    Workflow,
    WorkflowVersion,
)
from core.errors import Conflict, InvalidRequest, NotFound
from core.ids import new_id
from core.secrets import SecretBox
from scheduler.executors.environment import variable_name_problem
from scheduler.registration import slugify

DEFAULT_START_COMMAND = "conveyor-worker main:app"
# "node": a Node project (builder/node_project.py); a package.json without Python files is one
# whatever the workflow says
RUNTIMES = ("python", "node")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}\Z")
_REPO_SCHEMES = ("https://", "http://", "file://", "ssh://", "git@")
_SEGMENT = "[A-Za-z0-9_~%+-][A-Za-z0-9._~%+-]*"
# `scheme://host/owner/name` (file:// paths end in owner/name) or scp-like `git@host:owner/name`;
# the OpenAPI document shows the same pattern.
REPO_URL_PATTERN = (
    f"^(?:(?:https?|ssh|file)://[A-Za-z0-9.:@_~%+-]*(?:/{_SEGMENT}){{2,}}"
    f"|git@[A-Za-z0-9.-]+:{_SEGMENT}(?:/{_SEGMENT})+)/?$"
)
_REPO_URL = re.compile(REPO_URL_PATTERN)


class InstallationFinder(Protocol):
    async def installation_for(self, workspace_id: str, full_name: str) -> int | None:
        """Which installation owned by the workspace can read `owner/name`, if any."""
        ...


@dataclass(frozen=True)
class WorkflowRecord:
    id: str
    slug: str
    name: str
    repo_url: str | None
    branch: str | None
    root_dir: str
    build_command: str
    start_command: str
    runtime: str
    env_names: tuple[str, ...]  # the values never leave the database decrypted, except to runs
    active_version_id: str | None
    installation_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclass
class WorkflowChanges:
    """A create (every field a value) or a PATCH (None: unchanged)."""

    name: str | None = None
    slug: str | None = None
    repo_url: str | None = None
    branch: str | None = None
    root_dir: str | None = None
    build_command: str | None = None
    start_command: str | None = None
    runtime: str | None = None
    env_vars: dict[str, str | None] = field(default_factory=dict)  # None deletes a variable


def check_changes(changes: WorkflowChanges) -> None:
    """InvalidRequest naming the first bad field."""
    if changes.slug is not None and not _SLUG.match(changes.slug):
        raise InvalidRequest(
            f"slug {changes.slug!r} must be lower-case letters, digits and dashes (≤ 100)"
        )
    if changes.repo_url is not None and not changes.repo_url.startswith(_REPO_SCHEMES):
        raise InvalidRequest(f"repo {changes.repo_url!r} is not a git URL (https://, file://…)")
    if changes.repo_url is not None and not _REPO_URL.fullmatch(changes.repo_url):
        raise InvalidRequest(
            f"repo {changes.repo_url!r} does not name an owner/repository "
            "(https://host/owner/name, git@host:owner/name or file:///path/owner/name)"
        )
    if changes.repo_url and repo_full_name(changes.repo_url) is None:
        raise InvalidRequest(f"repo {changes.repo_url!r} does not name an owner/repository")
    if changes.runtime is not None and changes.runtime not in RUNTIMES:
        raise InvalidRequest(f"runtime must be one of {', '.join(RUNTIMES)}")
    if changes.start_command is not None and not changes.start_command.strip():
        raise InvalidRequest("startCommand must not be empty")
    if changes.root_dir is not None and (
        changes.root_dir.startswith("/") or ".." in changes.root_dir.split("/")
    ):
        raise InvalidRequest("rootDir must be a relative path inside the repository")
    for name in changes.env_vars:
        problem = variable_name_problem(name)
        if problem is not None:
            raise InvalidRequest(f"envVars: {problem}")


def _owner(row: Workflow) -> str:
    return f"workflow {row.slug!r} ({row.id})"


class WorkflowCatalog:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secrets: SecretBox,
        policy: RepoPolicy,
        installations: InstallationFinder,
    ) -> None:
        self._sessions = sessions
        self._secrets = secrets
        self._policy = policy
        self._installations = installations

    async def _installation(self, workspace_id: str, repo_url: str) -> int | None:
        """The workspace's installation that can read a repository on the configured GitHub."""
        full_name = self._policy.github_full_name(repo_url)
        if full_name is None:
            return None
        return await self._installations.installation_for(workspace_id, full_name)

    async def _check(self, changes: WorkflowChanges) -> None:
        check_changes(changes)
        if changes.repo_url:
            await self._policy.check(changes.repo_url)

    def _record(self, row: Workflow) -> WorkflowRecord:
        return WorkflowRecord(
            id=row.id,
            slug=row.slug,
            name=row.name,
            repo_url=row.repo_url,
            branch=row.branch,
            root_dir=row.root_dir,
            build_command=row.build_command,
            start_command=row.start_command,
            runtime=row.runtime,
            env_names=tuple(sorted(self._secrets.open(row.env_vars, _owner(row)))),
            active_version_id=row.active_version_id,
            installation_id=row.installation_id,
            created_at=row.created_at,
            updated_at=row.updated_at or row.created_at,
        )

    async def create(self, workspace_id: str, changes: WorkflowChanges) -> WorkflowRecord:
        if not changes.name and not changes.slug:
            raise InvalidRequest("name is required")
        slug = changes.slug or slugify(changes.name or "")
        changes.slug = slug
        await self._check(changes)
        now = datetime.now(UTC)
        env = {k: v for k, v in changes.env_vars.items() if v is not None}
        installation_id = None
        if changes.repo_url:
            installation_id = await self._installation(workspace_id, changes.repo_url)
        async with self._sessions.begin() as session:
            taken = await session.scalar(
                select(Workflow.id).where(
                    Workflow.workspace_id == workspace_id, Workflow.slug == slug
                )
            )
            if taken is not None:
                raise Conflict(f"a workflow with slug {slug!r} exists already ({taken})")
            row = Workflow(
                id=new_id("wf"),
                workspace_id=workspace_id,
                slug=slug,
                name=changes.name or slug,
                repo_url=changes.repo_url or None,
                branch=changes.branch or "main",
                root_dir=changes.root_dir or "",
                build_command=changes.build_command or "",
                start_command=changes.start_command or DEFAULT_START_COMMAND,
                runtime=changes.runtime or "python",
                env_vars=self._secrets.seal(env) if env else None,
                installation_id=installation_id,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
        return self._record(row)

    async def update(
        self, workspace_id: str, workflow_id: str, changes: WorkflowChanges
    ) -> WorkflowRecord:
        await self._check(changes)
        installation_id = None
        if changes.repo_url:
            installation_id = await self._installation(workspace_id, changes.repo_url)
        async with self._sessions.begin() as session:
            row = await self._row(session, workspace_id, workflow_id)
            if changes.repo_url is not None and changes.repo_url != row.repo_url:
                row.installation_id = installation_id
            for attribute in (
                "name",
                "repo_url",
                "branch",
                "root_dir",
                "build_command",
                "start_command",
                "runtime",
            ):
                value = getattr(changes, attribute)
                if value is not None:
                    setattr(row, attribute, value)
            if changes.slug is not None and changes.slug != row.slug:
                raise Conflict("slug cannot change: runs and clients name tasks by it")
            if changes.env_vars:
                env: dict[str, str] = self._secrets.open(row.env_vars, _owner(row))
                for name, value in changes.env_vars.items():
                    if value is None:
                        env.pop(name, None)
                    else:
                        env[name] = value
                row.env_vars = self._secrets.seal(env) if env else None
            row.updated_at = datetime.now(UTC)
        return self._record(row)

    async def delete(self, workspace_id: str, workflow_id: str) -> None:
        async with self._sessions.begin() as session:
            row = await self._row(session, workspace_id, workflow_id)
            runs = await session.scalar(select(func.count()).where(TaskRun.workflow_id == row.id))
            if runs:
                raise Conflict(f"workflow {row.slug!r} has {runs} task runs; it cannot be deleted")
            await session.execute(delete(Build).where(Build.workflow_id == row.id))
            await session.execute(delete(Task).where(Task.workflow_id == row.id))
            await session.execute(
                delete(WorkflowVersion).where(WorkflowVersion.workflow_id == row.id)
            )
            await session.delete(row)

    async def get(self, workspace_id: str, workflow_id: str) -> WorkflowRecord:
        async with self._sessions() as session:
            return self._record(await self._row(session, workspace_id, workflow_id))

    async def list_builds(
        self, workspace_id: str, workflow_id: str | None, limit: int = 100
    ) -> list[BuildInfo]:
        query = (
            select(Build, BuilderProcess.name)
            .join(Workflow, Workflow.id == Build.workflow_id)
            .outerjoin(BuilderProcess, BuilderProcess.id == Build.builder_id)
            .where(Workflow.workspace_id == workspace_id)
            .order_by(Build.id.desc())
            .limit(limit)
        )
        if workflow_id:
            query = query.where(Build.workflow_id == workflow_id)
        async with self._sessions() as session:
            return [build_info(row, name) for row, name in await session.execute(query)]

    async def get_build(self, workspace_id: str, build_id: str) -> tuple[BuildInfo, str]:
        """The build and its log's blob key."""
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(Build, BuilderProcess.name)
                    .join(Workflow, Workflow.id == Build.workflow_id)
                    .outerjoin(BuilderProcess, BuilderProcess.id == Build.builder_id)
                    .where(Workflow.workspace_id == workspace_id, Build.id == build_id)
                )
            ).one_or_none()
            if found is None:
                raise NotFound(f"build {build_id!r} not found")
            row, name = found
            return build_info(row, name), row.log_key

    async def tracking(
        self, installation_id: int, full_name: str, branch: str
    ) -> list[tuple[str, str]]:
        """(workspace id, workflow id) of every workflow that builds `branch` of `owner/name` on
        the configured GitHub, in a workspace that owns `installation_id`.

        Nothing else matches: not a workflow of another workspace, nor one whose repository has
        the same `owner/name` on another host.
        """
        async with self._sessions() as session:
            rows = await session.execute(
                select(Workflow.workspace_id, Workflow.id, Workflow.repo_url)
                .join(
                    GitHubInstallationWorkspace,
                    GitHubInstallationWorkspace.workspace_id == Workflow.workspace_id,
                )
                .where(
                    GitHubInstallationWorkspace.installation_id == installation_id,
                    Workflow.repo_url.is_not(None),
                    Workflow.branch == branch,
                )
                .order_by(Workflow.id)
            )
            return [
                (workspace, workflow)
                for workspace, workflow, url in rows
                if url and self._policy.github_full_name(url) == full_name.lower()
            ]

    async def set_installation(self, workflow_id: str, installation_id: int | None) -> None:
        async with self._sessions.begin() as session:
            row = await session.get_one(Workflow, workflow_id)
            row.installation_id = installation_id

    @staticmethod
    async def _row(session: AsyncSession, workspace_id: str, workflow_id: str) -> Workflow:
        row = await session.scalar(
            select(Workflow).where(
                Workflow.workspace_id == workspace_id,
                (Workflow.id == workflow_id) | (Workflow.slug == workflow_id),
            )
        )
        if row is None:
            raise NotFound(f"workflow {workflow_id!r} not found")
        return row
