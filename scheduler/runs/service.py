"""What the API, the CLI and the dashboard may ask of the engine (one workspace at a time).

Reads come from `RunReads`; creating and cancelling runs check what clients send and then take
their transitions. Errors are `core.errors.ServiceError` subclasses.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from core.domain import (
    JSON,
    LogChunk,
    Page,
    RunInfo,
    ScheduleInfo,
    TaskInfo,
    VersionInfo,
    WorkflowInfo,
)
from core.events import EventBus
from core.settings import Settings
from scheduler.payloads import PayloadStore, check_input
from scheduler.runs import catalog
from scheduler.runs.catalog import TaskFilter, VersionFilter, WorkflowFilter
from scheduler.runs.logs import RunLogs
from scheduler.runs.queue import QueueView, queue_view
from scheduler.runs.reads import RunReads
from scheduler.runs.rows import runs, workspaces
from scheduler.runs.summaries import runs_by_ids
from scheduler.runs.timeline import TreeHistory, tree_history
from scheduler.runs.transitions import Transitions
from scheduler.runs.usage import usage
from scheduler.schedules import list_schedules

if TYPE_CHECKING:
    from scheduler.flows.tables import StepInfo


class RunService(RunReads):
    def __init__(
        self,
        settings: Settings,
        transitions: Transitions,
        payloads: PayloadStore,
        bus: EventBus,
        logs: RunLogs,
    ) -> None:
        super().__init__(settings, transitions.writer.db, payloads, bus)
        self._transitions = transitions
        self._logs = logs

    async def create_run(
        self, workspace_id: str, task_ref: str, input: Any, idempotency_key: str | None = None
    ) -> RunInfo:
        """Start a root run of `wf/task[:version]` (or a bare task name when unambiguous).

        Raises NotFound (unknown task/version), InvalidRequest (input neither array nor object,
        or not fitting the parameter schemas Conveyor's SDK registered), PayloadTooLarge (input
        over `limits.max_input_bytes`).
        """
        text = check_input(input, max_bytes=self.settings.limits.max_input_bytes)
        idempotency = (f"api:{workspace_id}", idempotency_key) if idempotency_key else None
        if idempotency is not None and (earlier := await self._idempotent(*idempotency)):
            return earlier
        created = await self._transitions.create_root(
            workspace_id, task_ref, input, text, idempotency
        )
        if created is not None:
            return created
        assert idempotency is not None  # only a taken key gives no run
        earlier = await self._idempotent(*idempotency)
        assert earlier is not None, "the run holding the key is committed"
        return earlier

    async def _idempotent(self, scope: str, key: str) -> RunInfo | None:
        window = timedelta(seconds=self.settings.limits.idempotency_window_seconds)
        query = select(runs.c.id).where(
            runs.c.idempotency_scope == scope,
            runs.c.idempotency_key == key,
            runs.c.created_at >= datetime.now(UTC) - window,
        )
        run_id = await self.db.read(lambda conn: conn.scalar(query))
        return None if run_id is None else await self.run_by_id(run_id)

    async def list_tasks(
        self,
        workspace_id: str,
        *,
        workflow_id: str | None,
        cursor: str | None,
        limit: int,
        task_filter: TaskFilter | None = None,
    ) -> Page[TaskInfo]:
        """Tasks of each workflow's active version (of the filter's versions when it names any)."""
        task_filter = task_filter or TaskFilter()
        if workflow_id:
            task_filter = replace(
                task_filter, workflow_ids=(*task_filter.workflow_ids, workflow_id)
            )
        return await self.db.read(
            lambda conn: catalog.list_tasks(conn, workspace_id, task_filter, cursor, limit)
        )

    async def find_workflows(
        self, workspace_id: str, workflow_filter: WorkflowFilter, *, cursor: str | None, limit: int
    ) -> Page[WorkflowInfo]:
        """A page of workflows, oldest first, matching the filter."""
        return await self.db.read(
            lambda conn: catalog.list_workflows(conn, workspace_id, workflow_filter, cursor, limit)
        )

    async def find_versions(
        self, workspace_id: str, version_filter: VersionFilter, *, cursor: str | None, limit: int
    ) -> Page[VersionInfo]:
        """A page of versions, newest first, matching the filter."""
        return await self.db.read(
            lambda conn: catalog.list_versions(conn, workspace_id, version_filter, cursor, limit)
        )

    async def get_version(self, workspace_id: str, version_id: str) -> VersionInfo:
        """Raises NotFound."""
        return await self.db.read(lambda conn: catalog.get_version(conn, workspace_id, version_id))

    async def cancel_run(self, workspace_id: str, run_id: str) -> RunInfo:
        """Cancel the run and its non-terminal descendants; a terminal run is left as it is."""
        await self._transitions.cancel(workspace_id, run_id)
        return await self.get_run(workspace_id, run_id)

    async def read_log(
        self, workspace_id: str, run_id: str, attempt: int | None, offset: int = 0
    ) -> LogChunk:
        """A chunk of an attempt's log (the latest attempt by default). NotFound if none."""
        return await self._logs.read_log(workspace_id, run_id, attempt, offset)

    async def log_stamps(
        self, workspace_id: str, run_id: str, attempt: int | None
    ) -> list[tuple[int, int]]:
        """When an attempt's log grew, as the platform saw it: (offset, ms since the epoch)."""
        return await self._logs.read_stamps(workspace_id, run_id, attempt)

    def follow_log(
        self, workspace_id: str, run_id: str, attempt: int | None, offset: int = 0
    ) -> AsyncIterator[bytes]:
        """The attempt's log from `offset`, then new bytes as written, until the attempt ends."""
        return self._logs.follow_log(workspace_id, run_id, attempt, offset)

    async def list_schedules(self, workspace_id: str) -> list[ScheduleInfo]:
        """The cron schedules of the workspace's active versions, soonest first."""
        return await self.db.read(functools.partial(list_schedules, workspace_id))

    async def usage(self, workspace_id: str) -> dict[str, JSON]:
        """Compute seconds and cost per task and per day, and the queue's state."""
        default = self.settings.limits.max_concurrency

        def read(conn: Connection) -> dict[str, JSON]:
            limit = conn.scalar(
                select(workspaces.c.max_concurrency).where(workspaces.c.id == workspace_id)
            )
            return usage(conn, workspace_id, limit or default)

        return await self.db.read(read)

    async def run_summaries(self, workspace_id: str, run_ids: list[str]) -> list[RunInfo]:
        """The runs among `run_ids` without input, output or stack traces, newest first."""
        return await self.db.read(
            functools.partial(runs_by_ids, workspace_id=workspace_id, run_ids=run_ids)
        )

    async def tree_history(
        self, workspace_id: str, root_id: str, limit: int, *, include: str | None = None
    ) -> TreeHistory:
        """The first `limit` runs of a tree (and run `include`) with their attempts and waits."""
        return await self.db.read(
            lambda conn: tree_history(conn, workspace_id, root_id, limit, include=include)
        )

    async def queue(self, workspace_id: str, shown: int = 100) -> QueueView:
        """Live attempts, and pending runs in admission order with why each waits."""
        default = self.settings.limits.max_concurrency
        now = datetime.now(UTC)
        return await self.db.read(lambda conn: queue_view(conn, workspace_id, now, default, shown))

    async def run_ids_starting(self, workspace_id: str, prefix: str, limit: int) -> list[str]:
        """Ids of runs starting with `prefix` (letters, digits and `-` only), oldest first."""
        if not prefix or not all(c.isascii() and (c.isalnum() or c == "-") for c in prefix):
            return []
        query = (
            select(runs.c.id)
            .where(
                runs.c.workspace_id == workspace_id,
                runs.c.id >= prefix,
                runs.c.id < prefix + "\x7f",
            )
            .order_by(runs.c.id)
            .limit(limit)
        )
        return await self.db.read(lambda conn: list(conn.scalars(query)))

    async def set_max_concurrency(self, workspace_id: str, limit: int) -> None:
        """The workspace's concurrency limit (data: every process follows it at once)."""
        await self._transitions.set_limit(workspace_id, limit)

    async def flow_steps(self, workspace_id: str, run_id: str) -> list[StepInfo]:
        """A flow run's step log by seq; empty for a task's run. NotFound for no such run."""
        from scheduler.flows.steps import FlowSteps  # flows build on runs, not the reverse

        run = await self.get_run(workspace_id, run_id)
        return await FlowSteps(self.db, self.settings.limits, self.payloads).steps(run.id)
