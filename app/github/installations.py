"""Which accounts installed the GitHub App and which repositories it may read."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import GitHubInstallation


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
