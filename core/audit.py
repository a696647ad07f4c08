"""The audit trail: who changed keys, workflows and workspaces, what and when.

The actor is `key:<id>` (with the key's prefix kept beside it), `anonymous` for `conveyor dev`,
`cli` for the `conveyor keys` commands on the database, or `github` for webhooks. Details name
what changed (field and variable names), never a secret or a variable's value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import AuditEvent
from core.domain import Page
from core.errors import InvalidRequest

AuditAction = Literal[
    "key.created",
    "key.revoked",
    "workspace.created",
    "workspace.changed",
    "workflow.created",
    "workflow.updated",
    "workflow.deleted",
    "workflow.deployed",
    "installation.connected",
    "installation.disconnected",
]
AUDIT_ACTIONS: tuple[str, ...] = get_args(AuditAction)


@dataclass(frozen=True)
class Actor:
    name: str  # `key:<id>`, `anonymous`, `cli`, `github`
    key_prefix: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    workspace_id: str
    at: datetime
    actor: Actor
    action: str
    target: str
    details: dict[str, Any]


def _entry(row: AuditEvent) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        workspace_id=row.workspace_id,
        at=row.at,
        actor=Actor(row.actor, row.actor_prefix),
        action=row.action,
        target=row.target,
        details=json.loads(row.details),
    )


class AuditLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(
        self,
        workspace_id: str,
        actor: Actor,
        action: AuditAction,
        target: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        async with self._sessions.begin() as session:
            session.add(
                AuditEvent(
                    workspace_id=workspace_id,
                    at=datetime.now(UTC),
                    actor=actor.name,
                    actor_prefix=actor.key_prefix,
                    action=action,
                    target=target[:200],
                    details=json.dumps(details or {}, sort_keys=True),
                )
            )

    async def list(self, workspace_id: str, *, cursor: str | None, limit: int) -> Page[AuditEntry]:
        """Newest first; `cursor` is the last id of the previous page."""
        query = select(AuditEvent).where(AuditEvent.workspace_id == workspace_id)
        if cursor:
            if not cursor.isdigit() or len(cursor) > 18:
                raise InvalidRequest(f"cursor {cursor!r} is not an audit event id")
            query = query.where(AuditEvent.id < int(cursor))
        async with self._sessions() as session:
            rows = list(await session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)))
        entries = [_entry(row) for row in rows]
        more = str(entries[-1].id) if len(entries) == limit else None
        return Page(entries, more)
