"""Which accounts installed the GitHub App, which repositories it may read, and which
workspaces own each installation (only their workflows build on its pushes)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.github.app_client import GitHubApp
from core.db.models import (
    GitHubInstallation,
    GitHubInstallationWorkspace,
    Workflow,
    Workspace,
)
from core.errors import Conflict, NotFound

logger = logging.getLogger(__name__)


async def record_installation(
    sessions: async_sessionmaker[AsyncSession],
    installation_id: int,
    *,
    account: str | None,
    active: bool | None = None,
    repositories: list[str] | None = None,
    added: Sequence[str] = (),
    removed: Sequence[str] = (),
) -> GitHubInstallation:
    async with sessions.begin() as session:
        row = await session.get(GitHubInstallation, installation_id)
        if row is None:
            row = GitHubInstallation(
                id=installation_id, account=account or "", repositories="[]", active=True
            )
            session.add(row)
        if account:
            row.account = account
        if active is not None:
            row.active = active
        names: list[str] = json.loads(row.repositories)
        if repositories is not None:
            names = list(repositories)
        names = [n for n in dict.fromkeys([*names, *added]) if n not in set(removed)]
        row.repositories = json.dumps(sorted(names))
        row.updated_at = datetime.now(UTC)
    return row


@dataclass(frozen=True)
class Connection:
    """A workspace's ownership of an installation, with what GitHub told us of it."""

    installation_id: int
    workspace_id: str
    connected_at: datetime
    connected_by: str
    account: str | None  # None: no `installation` webhook recorded it yet
    repositories: tuple[str, ...]
    active: bool


class InstallationOwners:
    """Which workspaces own which installations (`github_installation_workspaces`)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def connect(
        self, installation_id: int, workspace_id: str, *, by: str, exclusive: bool
    ) -> Connection:
        """Make `workspace_id` own the installation (again: unchanged).

        `exclusive` (the setup flow): Conflict if another workspace owns it already; operators
        (`exclusive=False`) may give one installation to several workspaces.
        """
        async with self._sessions.begin() as session:
            if await session.get(Workspace, workspace_id) is None:
                raise NotFound(f"workspace {workspace_id!r} not found")
            owners = set(
                await session.scalars(
                    select(GitHubInstallationWorkspace.workspace_id).where(
                        GitHubInstallationWorkspace.installation_id == installation_id
                    )
                )
            )
            if exclusive and owners - {workspace_id}:
                raise Conflict(
                    f"installation {installation_id} belongs to another workspace; "
                    "an operator can connect it to more than one"
                )
            if workspace_id not in owners:
                session.add(
                    GitHubInstallationWorkspace(
                        installation_id=installation_id,
                        workspace_id=workspace_id,
                        connected_at=datetime.now(UTC),
                        connected_by=by[:100],
                    )
                )
        found = await self.connections(workspace_id, installation_id)
        return found[0]

    async def disconnect(self, installation_id: int, workspace_id: str) -> None:
        async with self._sessions.begin() as session:
            gone = await session.execute(
                delete(GitHubInstallationWorkspace).where(
                    GitHubInstallationWorkspace.installation_id == installation_id,
                    GitHubInstallationWorkspace.workspace_id == workspace_id,
                )
            )
            if not getattr(gone, "rowcount", 0):
                raise NotFound(
                    f"installation {installation_id} is not connected to workspace {workspace_id!r}"
                )
            # its workflows no longer fetch with that installation's token
            await session.execute(
                update(Workflow)
                .where(
                    Workflow.workspace_id == workspace_id,
                    Workflow.installation_id == installation_id,
                )
                .values(installation_id=None)
            )

    async def connections(
        self, workspace_id: str | None = None, installation_id: int | None = None
    ) -> list[Connection]:
        query = (
            select(GitHubInstallationWorkspace, GitHubInstallation)
            .outerjoin(
                GitHubInstallation,
                GitHubInstallation.id == GitHubInstallationWorkspace.installation_id,
            )
            .order_by(
                GitHubInstallationWorkspace.workspace_id,
                GitHubInstallationWorkspace.installation_id,
            )
        )
        if workspace_id is not None:
            query = query.where(GitHubInstallationWorkspace.workspace_id == workspace_id)
        if installation_id is not None:
            query = query.where(GitHubInstallationWorkspace.installation_id == installation_id)
        async with self._sessions() as session:
            return [_connection(link, row) for link, row in await session.execute(query)]

    async def owned(self, workspace_id: str) -> list[int]:
        return [c.installation_id for c in await self.connections(workspace_id)]


def _connection(link: GitHubInstallationWorkspace, row: GitHubInstallation | None) -> Connection:
    return Connection(
        installation_id=link.installation_id,
        workspace_id=link.workspace_id,
        connected_at=link.connected_at,
        connected_by=link.connected_by,
        account=row.account if row is not None else None,
        repositories=tuple(json.loads(row.repositories)) if row is not None else (),
        active=row.active if row is not None else True,
    )


class WorkspaceInstallations:
    """Which installation of a workspace can read a repository: GitHub's answer when the App is
    configured, else the repositories its `installation` webhooks listed."""

    def __init__(self, owners: InstallationOwners, github: GitHubApp | None) -> None:
        self._owners = owners
        self._github = github

    async def installation_for(self, workspace_id: str, full_name: str) -> int | None:
        owned = await self._owners.connections(workspace_id)
        if not owned:
            return None
        if self._github is not None:
            try:
                found = await self._github.repository_installation(full_name)
            except Exception:  # GitHub unreachable: what its webhooks told us will do
                logger.exception("asking GitHub which installation reads %s failed", full_name)
            else:
                return found if found in {c.installation_id for c in owned} else None
        for connection in owned:
            if full_name.lower() in connection.repositories:
                return connection.installation_id
        return None
