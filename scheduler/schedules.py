"""Cron schedules: a task registered with `schedule=` gets a root run at each of its times.

Schedules follow the workflow's active version: a version that drops a task's schedule removes
it. Firing is a transition (`Transitions.fire_schedules`): each run is created with an idempotency
key of the schedule and the fire time, in the same transaction that moves the schedule on, so no
two schedulers fire one time twice. Missed times (the control plane was down) fire once, then the
schedule continues from now.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from croniter import croniter
from sqlalchemy import Connection, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Schedule, Workflow
from core.domain import ScheduleInfo, TaskSpec
from core.ids import new_id

schedules = cast(Table, Schedule.__table__)
workflows = cast(Table, Workflow.__table__)


def next_time(cron: str, after: datetime) -> datetime:
    fire: datetime = croniter(cron, after).get_next(datetime)
    return fire


async def sync(
    session: AsyncSession,
    workspace_id: str,
    workflow_id: str,
    specs: list[TaskSpec],
    now: datetime,
) -> None:
    """Make the workflow's schedules those of `specs` (its newly active version's tasks)."""
    wanted = {s.name: s.options.schedule for s in specs if s.options.schedule}
    existing = {
        row.task_name: row
        for row in await session.scalars(
            select(Schedule).where(Schedule.workflow_id == workflow_id)
        )
    }
    for name, row in existing.items():
        if name not in wanted:
            await session.delete(row)
        elif row.cron != wanted[name]:
            row.cron = wanted[name] or row.cron
            row.next_fire_at = next_time(row.cron, now)
    for name, cron in wanted.items():
        if name not in existing and cron:
            session.add(
                Schedule(
                    id=new_id("sch"),
                    workspace_id=workspace_id,
                    workflow_id=workflow_id,
                    task_name=name,
                    cron=cron,
                    next_fire_at=next_time(cron, now),
                    created_at=now,
                )
            )


def list_schedules(workspace_id: str, conn: Connection) -> list[ScheduleInfo]:
    """The cron schedules of the workspace's active versions, soonest first."""
    rows = conn.execute(
        select(schedules, workflows.c.slug)
        .join(workflows, workflows.c.id == schedules.c.workflow_id)
        .where(schedules.c.workspace_id == workspace_id)
        .order_by(schedules.c.next_fire_at)
    )
    return [
        ScheduleInfo(
            id=row.id,
            workflow_id=row.workflow_id,
            task_slug=f"{row.slug}/{row.task_name}",
            cron=row.cron,
            next_fire_at=row.next_fire_at,
            last_fired_at=row.last_fired_at,
            last_run_id=row.last_run_id,
        )
        for row in rows
    ]


def next_fire(conn: Connection) -> datetime | None:
    """The earliest time any schedule fires."""
    fire: datetime | None = conn.scalar(select(func.min(schedules.c.next_fire_at)))
    return fire
