"""What the dashboard reads of flows beside a run: which runs are flows, and which sleep.

A flow run is a task run whose task has kind `flow` (docs/flows.md); a paused one is a pending
run whose last attempt ended by reaching a durable sleep, its wake time the run's `not_before`
(as `/v1/flow-runs` says `paused`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from core.domain import AttemptOutcome, RunInfo, RunStatus
from scheduler.runs.catalog import TaskFilter
from scheduler.runs.service import RunService

FLOW = "flow"


def paused_until(run: RunInfo) -> datetime | None:
    """The wake time of a flow run asleep; None for any other run."""
    last = run.attempts[-1] if run.attempts else None
    if run.status is not RunStatus.PENDING or last is None:
        return None
    if last.outcome is not AttemptOutcome.PAUSED:
        return None
    return run.not_before


async def flow_task_ids(service: RunService, workspace: str, runs: Iterable[RunInfo]) -> set[str]:
    """The ids of the tasks of `runs` that are flows (one read, whatever their versions)."""
    runs = list(runs)
    task_ids = tuple(sorted({run.task_id for run in runs}))
    if not task_ids:
        return set()
    version_ids = tuple(sorted({run.version_id for run in runs}))
    found = await service.list_tasks(
        workspace,
        workflow_id=None,
        cursor=None,
        limit=len(task_ids),
        task_filter=TaskFilter(task_ids=task_ids, version_ids=version_ids, kinds=(FLOW,)),
    )
    return {task.id for task in found.items if task.kind == FLOW}


async def is_flow(service: RunService, workspace: str, run: RunInfo) -> bool:
    return run.task_id in await flow_task_ids(service, workspace, [run])
