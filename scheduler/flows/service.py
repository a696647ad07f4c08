"""Flow runs and flows as the REST API reads them: runs of flow-kind tasks, with their steps.

Ids follow Render's prefixes over the run lifecycle's own: the flow run ``frn-X`` is the run
``trn-X``, the flow ``flw-X`` the task ``tsk-X``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, select

from core.domain import AttemptOutcome, Page, RunFilter, RunInfo, RunStatus, TaskInfo
from core.errors import NotFound
from scheduler.flows.rerun import rerun
from scheduler.flows.steps import FlowSteps
from scheduler.flows.tables import StepDetails, StepInfo
from scheduler.runs.catalog import TaskFilter
from scheduler.runs.rows import task_info, tasks, workflows
from scheduler.runs.service import RunService
from scheduler.runs.writes import Writer

FLOW_KIND = "flow"


def _swap(value: str, old: str, new: str, what: str) -> str:
    if not value.startswith(f"{old}-"):
        raise NotFound(f"{what} {value} not found")
    return f"{new}-{value[len(old) + 1 :]}"


def flow_run_id(run_id: str) -> str:
    return _swap(run_id, "trn", "frn", "task run")


def run_id_of(flow_run_id: str) -> str:
    return _swap(flow_run_id, "frn", "trn", "flow run")


def filter_id(value: str, prefix: str, own: str) -> str:
    """An id of a filter or cursor in the lifecycle's prefix; one of another prefix matches
    nothing (a filter) or is refused as a bad cursor, as any unknown id."""
    return f"{own}-{value[len(prefix) + 1 :]}" if value.startswith(f"{prefix}-") else value


def flow_id(task_id: str) -> str:
    return _swap(task_id, "tsk", "flw", "task")


def task_id_of(flow_id: str) -> str:
    return _swap(flow_id, "flw", "tsk", "flow")


@dataclass(frozen=True)
class FlowRunView:
    run: RunInfo
    error_details: dict[str, Any] | None

    @property
    def status(self) -> str:
        """The run's status, or ``paused`` while it sleeps (pending after a paused attempt)."""
        last = self.run.attempts[-1] if self.run.attempts else None
        paused = last is not None and last.outcome is AttemptOutcome.PAUSED
        if self.run.status is RunStatus.PENDING and paused:
            return "paused"
        return self.run.status.value


class FlowService:
    """Starts, reads and cancels flow runs through the run lifecycle."""

    def __init__(self, runs: RunService, writer: Writer) -> None:
        self._runs = runs
        self._writer = writer
        self._steps = FlowSteps(runs.db, runs.settings.limits, runs.payloads)

    async def start(
        self, workspace_id: str, flow_ref: str, input: Any, idempotency_key: str | None
    ) -> FlowRunView:
        """A new run of ``workflow/flow[:version]``; NotFound when it names a task."""
        flow = await self._runs.get_task(workspace_id, flow_ref)
        if flow.kind != FLOW_KIND:
            raise NotFound(f"flow {flow_ref!r} not found ({flow.slug} is a task)")
        run = await self._runs.create_run(workspace_id, flow_ref, input, idempotency_key)
        return FlowRunView(run, None)

    async def get(self, workspace_id: str, flow_run_id: str) -> FlowRunView:
        run = await self._runs.get_run(workspace_id, run_id_of(flow_run_id))
        if not await self._is_flow(run.task_id):
            raise NotFound(f"flow run {flow_run_id} not found")
        return FlowRunView(run, await self._steps.error_details(run.id))

    async def list_runs(
        self, workspace_id: str, run_filter: RunFilter, *, cursor: str | None, limit: int
    ) -> Page[FlowRunView]:
        run_filter = replace(run_filter, kinds=(FLOW_KIND,))
        page = await self._runs.list_runs(
            workspace_id,
            run_filter,
            cursor=filter_id(cursor, "frn", "trn") if cursor else None,
            limit=limit,
        )
        return Page([FlowRunView(run, None) for run in page.items], page.next_cursor)

    async def cancel(self, workspace_id: str, flow_run_id: str) -> None:
        """Cancels the run, its sleep and its detached steps' runs."""
        view = await self.get(workspace_id, flow_run_id)
        await self._runs.cancel_run(workspace_id, view.run.id)

    async def rerun(self, workspace_id: str, flow_run_id: str) -> FlowRunView:
        """A failed flow run continues in a new attempt from its failed step."""
        run_id = run_id_of(flow_run_id)
        await rerun(self._writer, workspace_id, run_id)
        return await self.get(workspace_id, flow_run_id)

    async def steps(self, workspace_id: str, flow_run_id: str) -> list[StepInfo]:
        view = await self.get(workspace_id, flow_run_id)
        return await self._steps.steps(view.run.id)

    async def step(self, workspace_id: str, flow_run_id: str, seq: int) -> StepDetails:
        view = await self.get(workspace_id, flow_run_id)
        return await self._steps.details(view.run.id, seq)

    async def flows(
        self, workspace_id: str, task_filter: TaskFilter, *, cursor: str | None, limit: int
    ) -> Page[TaskInfo]:
        return await self._runs.list_tasks(
            workspace_id,
            workflow_id=None,
            cursor=filter_id(cursor, "flw", "tsk") if cursor else None,
            limit=limit,
            task_filter=replace(task_filter, kinds=(FLOW_KIND,)),
        )

    async def flow(self, workspace_id: str, flow_id: str) -> TaskInfo:
        task_id = task_id_of(flow_id)

        def read(conn: Connection) -> TaskInfo | None:
            row = conn.execute(
                select(tasks, workflows.c.slug)
                .join(workflows, workflows.c.id == tasks.c.workflow_id)
                .where(
                    workflows.c.workspace_id == workspace_id,
                    tasks.c.id == task_id,
                    tasks.c.kind == FLOW_KIND,
                )
            ).first()
            return task_info(row, row.slug) if row is not None else None

        info = await self._runs.db.read(read)
        if info is None:
            raise NotFound(f"flow {flow_id} not found")
        return info

    async def _is_flow(self, task_id: str) -> bool:
        kind = await self._runs.db.read(
            lambda conn: conn.scalar(select(tasks.c.kind).where(tasks.c.id == task_id))
        )
        return bool(kind == FLOW_KIND)
