"""Rerun a failed flow run from its failed step: a new attempt replays what succeeded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select, update

from core.domain import RunStatus
from core.errors import Conflict, NotFound
from scheduler.flows.tables import flow_errors
from scheduler.runs.rows import changed, runs, tasks
from scheduler.runs.writes import Changes, Writer


async def rerun(writer: Writer, workspace_id: str, run_id: str) -> None:
    """The failed flow run is pending again; its next attempt replays its succeeded steps and
    runs the failed one again. It is one more attempt: its own failure fails the run again.

    Raises NotFound (no such flow run) or Conflict (the run has not failed).
    """

    def transition(conn: Connection, changes: Changes) -> None:
        run: Any = conn.execute(
            select(runs)
            .where(runs.c.id == run_id, runs.c.workspace_id == workspace_id)
            .with_for_update(key_share=True)
        ).first()
        kind = run and conn.scalar(select(tasks.c.kind).where(tasks.c.id == run.task_id))
        if run is None or kind != "flow":
            raise NotFound(f"flow run {run_id} not found")
        if run.status != RunStatus.FAILED.value:
            raise Conflict(f"flow run {run_id} is {run.status}: only a failed one is rerun")
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(
                status=RunStatus.PENDING.value,
                completed_at=None,
                not_before=None,
                error=None,
                stack_trace=None,
            )
        )
        conn.execute(delete(flow_errors).where(flow_errors.c.run_id == run_id))
        changes.add(changed(run, RunStatus.PENDING.value))
        changes.wake = True  # the scheduler's loop admits it

    await writer.run(transition)
