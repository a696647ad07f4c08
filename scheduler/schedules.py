"""Cron schedules: a task registered with `schedule=` gets a root run at each of its times.

Schedules follow the workflow's active version: a version that drops a task's schedule removes
it. Each firing creates its run with an idempotency key of the schedule and the fire time, in the
same transaction that moves the schedule on, so no two schedulers fire one time twice. Missed
times (the control plane was down) fire once, then the schedule continues from now.
"""

from __future__ import annotations

from datetime import datetime

from croniter import croniter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Schedule, Task, TaskRun, Workflow
from core.domain import ScheduleInfo, TaskSpec
from core.ids import new_id
from scheduler import queries
from scheduler.admission import changed
from scheduler.runs import RunStore, root_run

# schedules fired per pass; the rest fire on the next pass, moments later
_BATCH = 100


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


class Schedules:
    def __init__(self, store: RunStore) -> None:
        self._store = store

    async def next_fire(self) -> datetime | None:
        async with self._store.sessions() as session:
            return await session.scalar(select(func.min(Schedule.next_fire_at)))

    async def fire_due(self, now: datetime) -> int:
        """Start a run for every schedule whose time has come; the number started."""
        async with self._store.write() as (session, changes):
            due = list(
                await session.scalars(
                    select(Schedule)
                    .where(Schedule.next_fire_at <= now)
                    .order_by(Schedule.next_fire_at)
                    .limit(_BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            for schedule in due:
                run = await self._fire(session, schedule, now)
                if run is not None:
                    changes.append(changed(run, run.status))
        return len(due)

    async def _fire(
        self, session: AsyncSession, schedule: Schedule, now: datetime
    ) -> TaskRun | None:
        fire_time = schedule.next_fire_at
        schedule.next_fire_at = next_time(schedule.cron, now)
        row = (
            await session.execute(
                select(Task, Workflow.slug)
                .join(Workflow, Workflow.id == Task.workflow_id)
                .where(
                    Workflow.id == schedule.workflow_id,
                    Task.version_id == Workflow.active_version_id,
                    Task.name == schedule.task_name,
                )
            )
        ).first()
        if row is None:  # the active version no longer has the task; sync removes it soon
            return None
        task = queries.task_info(row[0], row[1])
        run = root_run(
            new_id("trn"),
            schedule.workspace_id,
            task,
            "[]",
            None,
            f"schedule:{schedule.id}",
            fire_time.isoformat(),
            now,
        )
        session.add(run)
        schedule.last_fired_at = now
        schedule.last_run_id = run.id
        return run

    async def list(self, workspace_id: str) -> list[ScheduleInfo]:
        async with self._store.sessions() as session:
            rows = await session.execute(
                select(Schedule, Workflow.slug)
                .join(Workflow, Workflow.id == Schedule.workflow_id)
                .where(Schedule.workspace_id == workspace_id)
                .order_by(Schedule.next_fire_at)
            )
            return [
                ScheduleInfo(
                    id=row.id,
                    workflow_id=row.workflow_id,
                    task_slug=f"{slug}/{row.task_name}",
                    cron=row.cron,
                    next_fire_at=row.next_fire_at,
                    last_fired_at=row.last_fired_at,
                    last_run_id=row.last_run_id,
                )
                for row, slug in rows
            ]
