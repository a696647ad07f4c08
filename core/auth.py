"""API keys: shown once at creation, stored as SHA-256 of a high-entropy secret.

A key belongs to one workspace, may expire, and is refused from the moment it is revoked or
expires (every request looks it up). A key with the `admin` scope may also create and list
workspaces and manage the keys of any workspace.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import ApiKey
from core.errors import NotFound
from core.ids import new_id

KEY_PREFIX = "cvy_"
ADMIN_SCOPE = "admin"
# `last_used_at` is written at most this often per key: no write on every request
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class KeyIdentity:
    """Who a valid key says the caller is."""

    id: str
    workspace_id: str
    prefix: str
    admin: bool


@dataclass(frozen=True)
class KeyInfo:
    id: str
    workspace_id: str
    name: str
    prefix: str
    admin: bool
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class CreatedKey:
    id: str
    name: str
    secret: str  # shown once; only its hash is kept
    info: KeyInfo


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(key: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=key.id,
        workspace_id=key.workspace_id,
        name=key.name,
        prefix=key.prefix,
        admin=ADMIN_SCOPE in key.scopes.split(),
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _usable(key: ApiKey, now: datetime) -> bool:
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > now)


class ApiKeys:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._sessions = sessions
        self._clock = clock  # tests step it to cross expiry and the last-used resolution

    async def create(
        self,
        workspace_id: str,
        name: str,
        *,
        expires_at: datetime | None = None,
        admin: bool = False,
    ) -> CreatedKey:
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id=new_id("key"),
            workspace_id=workspace_id,
            name=name,
            prefix=secret[:10],
            secret_hash=_hash(secret),
            created_at=self._clock(),
            expires_at=expires_at,
            scopes=ADMIN_SCOPE if admin else "",
        )
        async with self._sessions.begin() as session:
            session.add(key)
        return CreatedKey(id=key.id, name=name, secret=secret, info=_info(key))

    async def identify(self, secret: str) -> KeyIdentity | None:
        """The key behind `secret`, or None when unknown, revoked or expired."""
        now = self._clock()
        async with self._sessions() as session:
            key = await session.scalar(select(ApiKey).where(ApiKey.secret_hash == _hash(secret)))
        if key is None or not _usable(key, now):
            return None
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            async with self._sessions.begin() as session:
                await session.execute(
                    update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now)
                )
        return KeyIdentity(key.id, key.workspace_id, key.prefix, ADMIN_SCOPE in key.scopes.split())

    async def authenticate(self, secret: str) -> str | None:
        """The workspace id the key belongs to, or None for an unknown, revoked or expired key."""
        identity = await self.identify(secret)
        return None if identity is None else identity.workspace_id

    async def is_usable(self, key_id: str) -> bool:
        """Whether the key still opens anything (a dashboard session signed in with it checks)."""
        async with self._sessions() as session:
            key = await session.get(ApiKey, key_id)
        return key is not None and _usable(key, self._clock())

    async def workspace_of_key(self, key_id: str) -> str | None:
        async with self._sessions() as session:
            return await session.scalar(select(ApiKey.workspace_id).where(ApiKey.id == key_id))

    async def list(self, workspace_id: str) -> list[KeyInfo]:
        """The workspace's keys, newest first, revoked ones included (never their secrets)."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ApiKey)
                .where(ApiKey.workspace_id == workspace_id)
                .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
            )
            return [_info(key) for key in rows]

    async def revoke(self, workspace_id: str, key_id: str) -> KeyInfo:
        """Revoked from now on (again: unchanged); NotFound outside the workspace."""
        async with self._sessions.begin() as session:
            key = await session.get(ApiKey, key_id)
            if key is None or key.workspace_id != workspace_id:
                raise NotFound(f"API key {key_id!r} not found")
            if key.revoked_at is None:
                key.revoked_at = self._clock()
            return _info(key)
