"""A flow's durable sleep: its attempt ends and its run waits, holding no slot, until wake time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from core.domain import AttemptOutcome, AttemptState, RunStatus
from scheduler.runs.rows import attempt_events, attempts, changed, runs
from scheduler.runs.values import utcnow
from scheduler.runs.writes import Changes, Writer


async def pause(writer: Writer, attempt_id: str, run_id: str, wake_at: datetime) -> bool:
    """End the running attempt as paused; the run is pending again with its wake time as its
    ``not_before``, so admission starts its next attempt then. False if the attempt or its run
    has moved on (cancelled meanwhile: nothing to pause)."""

    def transition(conn: Connection, changes: Changes) -> bool:
        now = utcnow()
        run: Any = conn.execute(
            select(runs).where(runs.c.id == run_id).with_for_update(key_share=True)
        ).first()
        if run is None or run.status != RunStatus.RUNNING.value:
            return False
        ended = conn.execute(
            update(attempts)
            .where(attempts.c.id == attempt_id, attempts.c.outcome.is_(None))
            .values(
                outcome=AttemptOutcome.PAUSED.value,
                state=AttemptState.ENDED.value,
                waiting=False,
                ended_at=now,
            )
            .returning(attempts.c.number, attempts.c.workspace_id)
        ).first()
        if ended is None or ended.number != run.attempt_count - 1:
            return False
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(
                status=RunStatus.PENDING.value,
                not_before=wake_at,
                paused_count=run.paused_count + 1,
            )
        )
        conn.execute(
            insert(attempt_events),
            {
                "attempt_id": attempt_id,
                "workspace_id": ended.workspace_id,
                "kind": "ended",
                "at": now,
            },
        )
        changes.add(changed(run, RunStatus.PENDING.value))
        changes.wake = True  # the freed slot, and a timer for the wake time
        return True

    return await writer.run(transition)
