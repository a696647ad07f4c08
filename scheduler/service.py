"""What the API, the CLI and the dashboard may ask of the engine (one workspace at a time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from conveyor._input_check import input_problem
from core.domain import (
    JSON,
    Page,
    RunInfo,
    RunStatus,
    ScheduleInfo,
    TaskInfo,
    VersionInfo,
    WorkflowInfo,
)
from core.errors import InvalidRequest
from scheduler import catalog_queries
from scheduler.catalog_queries import TaskFilter, VersionFilter, WorkflowFilter

if TYPE_CHECKING:
    from scheduler.runs import RunStore


@dataclass(frozen=True)
class RunFilter:
    """Runs matching every given criterion; a tuple matches any of its values."""

    status: tuple[RunStatus, ...] = ()
    task_slugs: tuple[str, ...] = ()  # "wf/task" or a bare task name
    workflow_ids: tuple[str, ...] = ()
    version_ids: tuple[str, ...] = ()
    root_ids: tuple[str, ...] = ()
    parent_id: str | None = None
    roots_only: bool = False
    children_only: bool = False


@dataclass(frozen=True)
class LogChunk:
    data: bytes
    next_offset: int
    attempt: int
    finished: bool  # the attempt ended: nothing more will be appended


class RunService:
    """The engine's public operations; errors are `core.errors.ServiceError` subclasses."""

    def __init__(self, store: RunStore) -> None:
        self._store = store

    async def create_run(
        self, workspace_id: str, task_ref: str, input: Any, idempotency_key: str | None = None
    ) -> RunInfo:
        """Start a root run of `wf/task[:version]` (or a bare task name when unambiguous).

        Raises NotFound (unknown task/version), InvalidRequest (input neither array nor object,
        or not fitting the parameter schemas Conveyor's SDK registered), PayloadTooLarge (input
        over `limits.max_input_bytes`).
        """
        if isinstance(input, list | dict):
            task = await self._store.resolve_task(workspace_id, task_ref)
            problem = input_problem(task.parameters, input)
            if problem:
                raise InvalidRequest(f"task {task.slug!r} cannot take this input: {problem}")
        return await self._store.create_root_run(workspace_id, task_ref, input, idempotency_key)

    async def get_run(self, workspace_id: str, run_id: str) -> RunInfo:
        """Raises NotFound."""
        return await self._store.get_run(workspace_id, run_id)

    async def wait_run(self, workspace_id: str, run_id: str, timeout: float) -> RunInfo:
        """The run once terminal, or as it is after `timeout` seconds."""
        return await self._store.wait_run(workspace_id, run_id, timeout)

    async def list_runs(
        self, workspace_id: str, run_filter: RunFilter, *, cursor: str | None, limit: int
    ) -> Page[RunInfo]:
        """Newest first; `cursor` is the last id of the previous page. InvalidRequest if bad."""
        return await self._store.list_runs(workspace_id, run_filter, cursor=cursor, limit=limit)

    async def cancel_run(self, workspace_id: str, run_id: str) -> RunInfo:
        """Cancel the run and its non-terminal descendants; a terminal run is left as it is."""
        return await self._store.cancel_run(workspace_id, run_id)

    async def watch_runs(self, workspace_id: str, run_ids: list[str]) -> AsyncIterator[RunInfo]:
        """Yield each listed run once, when it is (or becomes) terminal; unknown ids → NotFound."""
        async for run in self._store.watch_terminal(workspace_id, run_ids):
            yield run

    async def watch_changes(self, workspace_id: str) -> AsyncIterator[RunInfo]:
        """Yield every run of the workspace each time its status changes (dashboard)."""
        async for run in self._store.watch_changes(workspace_id):
            yield run

    async def read_log(
        self, workspace_id: str, run_id: str, attempt: int | None, offset: int = 0
    ) -> LogChunk:
        """A chunk of an attempt's log (the latest attempt by default). NotFound if none."""
        return await self._store.read_log(workspace_id, run_id, attempt, offset)

    async def follow_log(
        self, workspace_id: str, run_id: str, attempt: int | None
    ) -> AsyncIterator[bytes]:
        """The attempt's log from the start, then new bytes as written, until the attempt ends."""
        async for data in self._store.follow_log(workspace_id, run_id, attempt):
            yield data

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
        async with self._store.sessions() as session:
            return await catalog_queries.list_tasks(
                session, workspace_id, task_filter, cursor, limit
            )

    async def get_task(self, workspace_id: str, task_ref: str) -> TaskInfo:
        return await self._store.resolve_task(workspace_id, task_ref)

    async def list_workflows(self, workspace_id: str) -> list[WorkflowInfo]:
        return await self._store.list_workflows(workspace_id)

    async def list_versions(self, workspace_id: str, workflow_id: str | None) -> list[VersionInfo]:
        return await self._store.list_versions(workspace_id, workflow_id)

    async def find_workflows(
        self, workspace_id: str, workflow_filter: WorkflowFilter, *, cursor: str | None, limit: int
    ) -> Page[WorkflowInfo]:
        """A page of workflows, oldest first, matching the filter."""
        async with self._store.sessions() as session:
            return await catalog_queries.list_workflows(
                session, workspace_id, workflow_filter, cursor, limit
            )

    async def find_versions(
        self, workspace_id: str, version_filter: VersionFilter, *, cursor: str | None, limit: int
    ) -> Page[VersionInfo]:
        """A page of versions, newest first, matching the filter."""
        async with self._store.sessions() as session:
            return await catalog_queries.list_versions(
                session, workspace_id, version_filter, cursor, limit
            )

    async def get_version(self, workspace_id: str, version_id: str) -> VersionInfo:
        """Raises NotFound."""
        async with self._store.sessions() as session:
            return await catalog_queries.get_version(session, workspace_id, version_id)

    async def list_schedules(self, workspace_id: str) -> list[ScheduleInfo]:
        """The cron schedules of the workspace's active versions, soonest first."""
        from scheduler.schedules import Schedules

        return await Schedules(self._store).list(workspace_id)

    async def usage(self, workspace_id: str) -> dict[str, JSON]:
        """Compute seconds and cost per task and per day, and the queue's state."""
        return await self._store.usage(workspace_id)
