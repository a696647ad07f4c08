"""Scheduler processes: who is alive, and whose attempts are orphaned and must be reconciled."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db.models import Attempt, SchedulerProcess
from core.domain import AttemptState
from core.ids import new_id
from core.liveness import process_gone

schedulers = cast(Table, SchedulerProcess.__table__)


class Membership:
    """This scheduler's row: registered at start, heartbeated, marked stopped at shutdown."""

    def __init__(self, engine: AsyncEngine, *, stale_after: timedelta) -> None:
        self._engine = engine
        self._stale_after = stale_after
        self.id = new_id("sch")
        self.hostname = socket.gethostname()
        self.live_count = 1  # schedulers alive at the last look (this one included)

    async def register(self) -> None:
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(schedulers).values(
                    id=self.id,
                    hostname=self.hostname,
                    pid=os.getpid(),
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    async def heartbeat(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(schedulers)
                .where(schedulers.c.id == self.id)
                .values(heartbeat_at=datetime.now(UTC))
            )

    async def stop(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(schedulers)
                .where(schedulers.c.id == self.id)
                .values(stopped_at=datetime.now(UTC))
            )

    def _gone(self, process: Any, now: datetime) -> bool:
        return process_gone(
            process, own_id=self.id, hostname=self.hostname, now=now, stale_after=self._stale_after
        )

    async def claim_orphans(self) -> list[tuple[str, str, str | None]]:
        """Take over unfinished attempts of schedulers that are gone: (attempt, run, handle)."""
        now = datetime.now(UTC)
        async with self._engine.connect() as conn:
            processes = (await conn.execute(select(schedulers))).all()
            live_ids = {p.id for p in processes if not self._gone(p, now)}
            self.live_count = max(len(live_ids | {self.id}), 1)
            rows = (
                await conn.execute(
                    select(Attempt.id, Attempt.run_id, Attempt.handle, Attempt.scheduler_id).where(
                        Attempt.state != AttemptState.ENDED.value,
                        or_(
                            Attempt.scheduler_id.is_(None),
                            Attempt.scheduler_id.not_in(live_ids or {""}),
                        ),
                    )
                )
            ).all()
        claimed = []
        for attempt_id, run_id, handle, owner in rows:
            async with self._engine.begin() as conn:
                taken = await conn.execute(
                    update(Attempt)
                    .where(
                        Attempt.id == attempt_id,
                        Attempt.scheduler_id.is_(None)
                        if owner is None
                        else Attempt.scheduler_id == owner,
                    )
                    .values(scheduler_id=self.id)
                )
            if taken.rowcount == 1:
                claimed.append((attempt_id, run_id, handle))
        return claimed
