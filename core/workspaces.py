"""Workspaces: created and listed by an admin key; each has its own keys, workflows and runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import Workspace
from core.ids import new_id


@dataclass(frozen=True)
class WorkspaceInfo:
    id: str
    name: str
    max_concurrency: int
    created_at: datetime


def _info(row: Workspace) -> WorkspaceInfo:
    return WorkspaceInfo(row.id, row.name, row.max_concurrency, row.created_at)


class Workspaces:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, name: str, max_concurrency: int) -> WorkspaceInfo:
        row = Workspace(
            id=new_id("wsp"),
            name=name,
            max_concurrency=max_concurrency,
            created_at=datetime.now(UTC),
        )
        async with self._sessions.begin() as session:
            session.add(row)
        return _info(row)

    async def list(self) -> list[WorkspaceInfo]:
        async with self._sessions() as session:
            rows = await session.scalars(select(Workspace).order_by(Workspace.created_at))
            return [_info(row) for row in rows]

    async def get(self, workspace_id: str) -> WorkspaceInfo | None:
        async with self._sessions() as session:
            row = await session.get(Workspace, workspace_id)
            return None if row is None else _info(row)

    async def exists(self, workspace_id: str) -> bool:
        async with self._sessions() as session:
            return await session.get(Workspace, workspace_id) is not None
