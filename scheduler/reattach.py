"""What the scheduler needs to watch an attempt again that a previous control plane started."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from scheduler.runs.admission import Admitted
from scheduler.runs.reads import RunReads


async def readmit(reads: RunReads, attempt_id: str) -> Admitted:
    """The attempt as admitted, with only the rest of its timeout left to run."""
    row = await reads.attempt_row(attempt_id)
    options = await reads.task_options(row.task_id)
    timeout = options.timeout_seconds or reads.settings.limits.default_timeout_seconds
    started = row.started_at or datetime.now(UTC)
    elapsed = (datetime.now(UTC) - started).total_seconds()
    return Admitted(
        attempt_id=row.id,
        run_id=row.run_id,
        attempt=row.number,
        task_name=row.task_name,
        version_id=row.version_id,
        plan=row.plan,
        timeout_seconds=max(math.ceil(timeout - elapsed), 1),
        log_key=row.log_key,
        workspace_id=row.workspace_id,
        root_id=row.root_id,
        parent_id=row.parent_id,
        input_json=row.input_json,
        input_key=row.input_key,
        started_at=row.started_at,
    )
