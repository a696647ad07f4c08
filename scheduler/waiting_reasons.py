"""Recording why a started attempt's instance is not running yet (shown on the run)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import Attempt
from core.domain import AttemptState
from scheduler.write_lock import WriteLock


class WaitingReasons:
    """`await reasons(attempt_id, "no capacity …")`; None clears it. Unknown ids are ignored
    (a registration's instance has no attempt row)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], write_lock: WriteLock) -> None:
        self._sessions = sessions
        self._lock = write_lock

    async def __call__(self, attempt_id: str, reason: str | None) -> None:
        async with self._lock, self._sessions.begin() as session:
            await session.execute(
                update(Attempt)
                .where(Attempt.id == attempt_id, Attempt.state != AttemptState.ENDED.value)
                .values(waiting_reason=reason)
            )
