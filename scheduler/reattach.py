"""What the scheduler needs to watch an attempt again that a previous control plane started."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from core.db.models import Attempt, Task, TaskRun
from scheduler import queries
from scheduler.admission import Admitted
from scheduler.runs import RunStore


async def readmit(store: RunStore, attempt_id: str) -> Admitted:
    """The attempt as admitted, with only the rest of its timeout left to run."""
    async with store.sessions() as session:
        attempt = await session.get_one(Attempt, attempt_id)
        run = await session.get_one(TaskRun, attempt.run_id)
        task = await session.get_one(Task, run.task_id)
    options = queries.options_from_json(task.options)
    timeout = options.timeout_seconds or store.settings.limits.default_timeout_seconds
    started = attempt.started_at or datetime.now(UTC)
    elapsed = (datetime.now(UTC) - started).total_seconds()
    return Admitted(
        attempt_id=attempt.id,
        run_id=run.id,
        attempt=attempt.number,
        task_name=run.task_name,
        version_id=run.version_id,
        plan=attempt.plan,
        timeout_seconds=max(math.ceil(timeout - elapsed), 1),
        log_key=attempt.log_key,
    )
