"""Usage: compute seconds and cost per task and per day, and the queue's state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, func, select

from core.db.models import Attempt, TaskRun
from core.domain import AttemptState, RunStatus
from scheduler.runs.rows import NON_TERMINAL


def usage(session: Connection, workspace_id: str, max_concurrency: int) -> dict[str, Any]:
    day = func.substr(func.cast(Attempt.started_at, type_=TaskRun.task_name.type), 1, 10)
    per_task = session.execute(
        select(
            TaskRun.workflow_slug,
            TaskRun.task_name,
            func.count(Attempt.id),
            func.coalesce(func.sum(Attempt.compute_seconds), 0.0),
            func.coalesce(func.sum(Attempt.cost_usd), 0.0),
        )
        .join(TaskRun, TaskRun.id == Attempt.run_id)
        .where(Attempt.workspace_id == workspace_id)
        .group_by(TaskRun.workflow_slug, TaskRun.task_name)
        .order_by(TaskRun.workflow_slug, TaskRun.task_name)
    )
    per_day = session.execute(
        select(
            day,
            func.coalesce(func.sum(Attempt.compute_seconds), 0.0),
            func.coalesce(func.sum(Attempt.cost_usd), 0.0),
        )
        .where(Attempt.workspace_id == workspace_id, Attempt.started_at.is_not(None))
        .group_by(day)
        .order_by(day)
    )
    counts = dict(
        (
            session.execute(
                select(TaskRun.status, func.count())
                .where(TaskRun.workspace_id == workspace_id, TaskRun.status.in_(NON_TERMINAL))
                .group_by(TaskRun.status)
            )
        ).all()
    )
    waiting = session.scalar(
        select(func.count()).where(
            and_(
                Attempt.workspace_id == workspace_id,
                Attempt.state != AttemptState.ENDED.value,
                Attempt.waiting.is_(True),
            )
        )
    )
    running = counts.get(RunStatus.RUNNING.value, 0)
    return {
        "maxConcurrency": max_concurrency,
        "queue": {
            "pending": counts.get(RunStatus.PENDING.value, 0),
            "running": running - (waiting or 0),
            "waiting": waiting or 0,
        },
        "perTask": [
            {
                "taskSlug": f"{slug}/{name}",
                "attempts": n,
                "computeSeconds": round(float(seconds or 0.0), 3),
                "costUsd": round(float(cost or 0.0), 6),
            }
            for slug, name, n, seconds, cost in per_task
        ],
        "perDay": [
            {"day": d, "computeSeconds": round(float(s), 3), "costUsd": round(float(c), 6)}
            for d, s, c in per_day
        ],
    }
