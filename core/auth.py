"""API keys: shown once at creation, stored as SHA-256 of a high-entropy secret."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import ApiKey
from core.ids import new_id

KEY_PREFIX = "cvy_"


@dataclass(frozen=True)
class CreatedKey:
    id: str
    name: str
    secret: str  # shown once; only its hash is kept


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, workspace_id: str, name: str) -> CreatedKey:
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id=new_id("key"),
            workspace_id=workspace_id,
            name=name,
            prefix=secret[:10],
            secret_hash=_hash(secret),
            created_at=datetime.now(UTC),
        )
        async with self._sessions.begin() as session:
            session.add(key)
        return CreatedKey(id=key.id, name=name, secret=secret)

    async def authenticate(self, secret: str) -> str | None:
        """The workspace id the key belongs to, or None for an unknown or revoked key."""
        async with self._sessions() as session:
            key = await session.scalar(
                select(ApiKey).where(
                    ApiKey.secret_hash == _hash(secret), ApiKey.revoked_at.is_(None)
                )
            )
        return None if key is None else key.workspace_id
