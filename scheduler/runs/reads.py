"""The read side of runs: queries as domain values, and waits for changes."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import functools
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, and_, bindparam, func, or_, select

from core.db.database import Database
from core.db.models import WorkflowVersion
from core.domain import (
    AttemptState,
    Page,
    RunFilter,
    RunInfo,
    RunStatus,
    TaskInfo,
    TaskOptions,
    VersionInfo,
    VersionStatus,
    WorkflowInfo,
)
from core.errors import InvalidRequest, NotFound
from core.events import EventBus
from core.settings import Settings
from scheduler.payloads import PayloadStore
from scheduler.runs.rows import (
    NON_TERMINAL,
    AnyRow,
    attempts,
    options_from_json,
    results_of,
    run_info,
    runs,
    task_info,
    tasks,
    workflow_info,
    workflows,
    workspaces,
)

versions = cast(Table, WorkflowVersion.__table__)


def parse_task_ref(task_ref: str) -> tuple[str | None, str, str | None]:
    """`wf/task[:version]` → (workflow slug, task name, version id); a bare name has no slug."""
    ref = task_ref.strip()
    if not ref:
        raise InvalidRequest("task is required, as 'workflow/task'")
    version: str | None = None
    if ":" in ref:
        ref, version = ref.rsplit(":", 1)
    slug, _, name = ref.rpartition("/")
    if not name or (slug == "" and "/" in ref):
        raise InvalidRequest(f"task {task_ref!r} is not of the form 'workflow/task[:version]'")
    return (slug or None), name, version


def runs_filter_query(workspace_id: str, run_filter: RunFilter) -> Select[Any]:
    query = select(runs).where(runs.c.workspace_id == workspace_id)
    if run_filter.status:
        query = query.where(runs.c.status.in_([str(s) for s in run_filter.status]))
    if run_filter.task_slugs:
        by_slug = []
        for task_slug in run_filter.task_slugs:
            slug, _, name = task_slug.rpartition("/")
            condition = runs.c.task_name == name
            by_slug.append(and_(condition, runs.c.workflow_slug == slug) if slug else condition)
        query = query.where(or_(*by_slug))
    for column, values in (
        (runs.c.workflow_id, run_filter.workflow_ids),
        (runs.c.version_id, run_filter.version_ids),
        (runs.c.root_id, run_filter.root_ids),
        (runs.c.id, run_filter.run_ids),
        (runs.c.task_id, run_filter.task_ids),
    ):
        if values:
            query = query.where(column.in_(values))
    if run_filter.parent_id:
        query = query.where(runs.c.parent_id == run_filter.parent_id)
    if run_filter.kinds:
        of_kind = select(tasks.c.id).where(tasks.c.kind.in_(run_filter.kinds))
        query = query.where(runs.c.task_id.in_(of_kind))
    if run_filter.roots_only:
        query = query.where(runs.c.parent_id.is_(None))
    if run_filter.children_only:
        query = query.where(runs.c.parent_id.is_not(None))
    return query


# Statements of the hot path are built once (building one costs more than running it).
_RUN_ROW = select(runs).where(runs.c.id == bindparam("run_id"))
_RUN_ROW_IN = _RUN_ROW.where(runs.c.workspace_id == bindparam("workspace_id"))
_ATTEMPTS_OF = (
    select(attempts).where(attempts.c.run_id == bindparam("run_id")).order_by(attempts.c.number)
)
_STATUS = select(runs.c.status).where(
    runs.c.id == bindparam("run_id"), runs.c.workspace_id == bindparam("workspace_id")
)
_STATUSES = select(runs.c.id, runs.c.status).where(
    runs.c.id.in_(bindparam("run_ids", expanding=True)),
    runs.c.workspace_id == bindparam("workspace_id"),
)
_CHILD_STATUS = select(runs.c.status).where(
    runs.c.id == bindparam("child_id"), runs.c.parent_id == bindparam("run_id")
)
_LIVE_ATTEMPT_RUN = select(attempts.c.run_id).where(
    attempts.c.id == bindparam("attempt_id"), attempts.c.state != AttemptState.ENDED.value
)
_WAITING = select(attempts.c.waiting, attempts.c.run_id, attempts.c.number).where(
    attempts.c.id == bindparam("attempt_id")
)
_OTHER_AWAITED = select(func.count()).where(
    runs.c.parent_id == bindparam("run_id"),
    runs.c.parent_attempt == bindparam("number"),
    runs.c.awaited.is_(True),
    runs.c.status.in_(NON_TERMINAL),
    runs.c.id != bindparam("child_id"),
)
_TASKS = select(tasks, workflows.c.slug).join(workflows, workflows.c.id == tasks.c.workflow_id)
_ACTIVE_TASK = _TASKS.where(
    workflows.c.workspace_id == bindparam("workspace_id"),
    tasks.c.name == bindparam("name"),
    workflows.c.slug == bindparam("slug"),
    tasks.c.version_id == workflows.c.active_version_id,
)


class RunReads:
    """Runs, tasks, workflows and usage of a workspace; waits on the bus for changes."""

    def __init__(
        self, settings: Settings, db: Database, payloads: PayloadStore, bus: EventBus
    ) -> None:
        self.settings = settings
        self.db = db
        self.payloads = payloads
        self.bus = bus

    # -- runs -------------------------------------------------------------------------------

    async def get_run(self, workspace_id: str, run_id: str) -> RunInfo:
        """The run with its attempts, input and results. Raises NotFound."""
        run, attempt_rows = await self.db.read(
            functools.partial(_run_and_attempts, workspace_id, run_id)
        )
        return await self._details(run, attempt_rows)

    async def run_by_id(self, run_id: str) -> RunInfo:
        """Any workspace's run (the agent answers for its own attempts' children)."""
        run, attempt_rows = await self.db.read(functools.partial(_run_and_attempts, None, run_id))
        return await self._details(run, attempt_rows)

    async def _details(self, run: AnyRow, attempt_rows: list[AnyRow]) -> RunInfo:
        input_value = await self.payloads.load(run.input_json, run.input_key)
        output = await self.payloads.load(run.output_json, run.output_key)
        return run_info(run, attempt_rows, input=input_value, results=results_of(output) or [])

    async def wait_run(self, workspace_id: str, run_id: str, timeout: float) -> RunInfo:
        """The run once terminal, or as it is after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        read_status = functools.partial(_status, workspace_id, run_id)
        read_run = functools.partial(_run_and_attempts, workspace_id, run_id)
        # only the status while waiting: payloads (maybe large) load once, at the end
        status: RunStatus | None = None
        while True:
            with self.bus.watch_run(run_id) as run_changed:
                if status is None:
                    status = await self.db.read(read_status)
                if status.terminal or deadline - loop.time() <= 0:
                    return await self.get_run(workspace_id, run_id)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(deadline - loop.time()):
                        await run_changed.wait()
                if run_changed.is_set():  # changed: read it whole, and done if it is done
                    run, attempt_rows = await self.db.read(read_run)
                    status = RunStatus(run.status)
                    if status.terminal:
                        return await self._details(run, attempt_rows)

    async def list_runs(
        self, workspace_id: str, run_filter: RunFilter, *, cursor: str | None, limit: int
    ) -> Page[RunInfo]:
        """Newest first; `cursor` is the last id of the previous page. InvalidRequest if bad."""
        if not 1 <= limit <= 100:
            raise InvalidRequest("limit must be between 1 and 100")
        query = runs_filter_query(workspace_id, run_filter)
        if cursor:
            query = query.where(runs.c.id < cursor)
        query = query.order_by(runs.c.id.desc()).limit(limit + 1)

        def page_of(conn: Connection) -> Page[RunInfo]:
            rows = conn.execute(query).all()
            page, more = rows[:limit], len(rows) > limit
            by_run = _attempts_by_run(conn, [r.id for r in page])
            items = [run_info(r, by_run[r.id]) for r in page]
            return Page(items, page[-1].id if more and page else None)

        return await self.db.read(page_of)

    async def run_statuses(self, workspace_id: str, run_ids: list[str]) -> dict[str, RunStatus]:
        """The status of each listed run, in one statement; the first unknown id → NotFound."""
        found = await self.db.read(functools.partial(_statuses, workspace_id, sorted(set(run_ids))))
        for run_id in run_ids:
            if run_id not in found:
                raise NotFound(f"task run {run_id} not found")
        return found

    async def watch_runs(self, workspace_id: str, run_ids: list[str]) -> AsyncIterator[RunInfo]:
        """Yield each listed run once, when it is (or becomes) terminal; unknown ids → NotFound."""
        remaining = set(run_ids)
        async with self.bus.subscribe() as changes:
            statuses = await self.run_statuses(workspace_id, run_ids)
            for run_id in run_ids:
                if statuses[run_id].terminal and run_id in remaining:
                    remaining.discard(run_id)
                    yield await self.get_run(workspace_id, run_id)
            while remaining:
                change = await changes.get()
                if change.terminal and change.run_id in remaining:
                    remaining.discard(change.run_id)
                    yield await self.get_run(workspace_id, change.run_id)

    async def watch_changes(self, workspace_id: str) -> AsyncIterator[RunInfo]:
        """Yield every run of the workspace each time its status changes (dashboard)."""
        async with self.bus.subscribe() as changes:
            while True:
                change = await changes.get()
                with contextlib.suppress(NotFound):
                    yield await self.get_run(workspace_id, change.run_id)

    # -- tasks and workflows ----------------------------------------------------------------

    async def resolve_task(self, workspace_id: str, task_ref: str) -> TaskInfo:
        """A task by `wf/task[:version]`, by bare name when unambiguous, or by its `tsk-` id."""
        return await self.db.read(functools.partial(resolve_task, workspace_id, task_ref))

    async def get_task(self, workspace_id: str, task_ref: str) -> TaskInfo:
        return await self.resolve_task(workspace_id, task_ref)

    async def list_workflows(self, workspace_id: str) -> list[WorkflowInfo]:
        query = (
            select(workflows)
            .where(workflows.c.workspace_id == workspace_id)
            .order_by(workflows.c.slug)
        )
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        return [workflow_info(row) for row in rows]

    async def list_versions(self, workspace_id: str, workflow_id: str | None) -> list[VersionInfo]:
        return await self.db.read(functools.partial(versions_of, workspace_id, workflow_id))

    # -- the scheduler's and the agent's questions ------------------------------------------

    async def workspace_ids(self) -> list[str]:
        return await self.db.read(lambda conn: list(conn.scalars(select(workspaces.c.id))))

    async def next_due(self) -> datetime | None:
        """When the earliest backed-off pending run becomes admissible."""
        query = select(func.min(runs.c.not_before)).where(
            runs.c.status == RunStatus.PENDING.value, runs.c.not_before.is_not(None)
        )
        due: datetime | None = await self.db.read(lambda conn: conn.scalar(query))
        return due

    async def live_attempt_run(self, attempt_id: str) -> str | None:
        """The run of an attempt whose instance has not ended, or None."""
        params = {"attempt_id": attempt_id}
        run_id: str | None = await self.db.read(lambda conn: conn.scalar(_LIVE_ATTEMPT_RUN, params))
        return run_id

    async def child_state(self, attempt_id: str, run_id: str, child_id: str) -> ChildState:
        """`child_id`, a child of run `run_id` (else NotFound): its status and, once it ended,
        the child itself if its result may go to the parent's attempt now. One read.

        A waiting parent still blocked on other children may take the result; one that would
        resume needs a slot, which admission grants by clearing `waiting`.
        """
        status, found = await self.db.read(
            functools.partial(_child_state, attempt_id, run_id, child_id)
        )
        if found is None:
            return ChildState(status, None)
        return ChildState(status, await self._details(*found))

    async def task_options(self, task_id: str) -> TaskOptions:
        query = select(tasks.c.options).where(tasks.c.id == task_id)
        text = await self.db.read(lambda conn: conn.scalar(query))
        if text is None:
            raise NotFound(f"task {task_id} not found")
        return options_from_json(text)

    async def ended_attempts(self, attempt_ids: set[str]) -> list[str]:
        """Those of `attempt_ids` that ended."""
        if not attempt_ids:
            return []
        query = select(attempts.c.id).where(
            attempts.c.id.in_(sorted(attempt_ids)),
            attempts.c.state == AttemptState.ENDED.value,
        )
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        return [row[0] for row in rows]

    async def attempt_row(self, attempt_id: str) -> AnyRow:
        """An attempt with its run's fields (relayed instances, reattaching)."""
        query = (
            select(
                attempts,
                runs.c.task_id,
                runs.c.task_name,
                runs.c.version_id,
                runs.c.root_id,
                runs.c.parent_id,
                runs.c.status.label("run_status"),
                runs.c.input_json,
                runs.c.input_key,
            )
            .join(runs, runs.c.id == attempts.c.run_id)
            .where(attempts.c.id == attempt_id)
        )
        row: AnyRow | None = await self.db.read(lambda conn: conn.execute(query).first())
        if row is None:
            raise NotFound(f"attempt {attempt_id} not found")
        return row


def _run_row(conn: Connection, workspace_id: str | None, run_id: str) -> AnyRow:
    if workspace_id is None:
        row: AnyRow | None = conn.execute(_RUN_ROW, {"run_id": run_id}).first()
    else:
        params = {"run_id": run_id, "workspace_id": workspace_id}
        row = conn.execute(_RUN_ROW_IN, params).first()
    if row is None:
        raise NotFound(f"task run {run_id} not found")
    return row


def _run_and_attempts(
    workspace_id: str | None, run_id: str, conn: Connection
) -> tuple[AnyRow, list[AnyRow]]:
    run = _run_row(conn, workspace_id, run_id)
    return run, list(conn.execute(_ATTEMPTS_OF, {"run_id": run.id}).all())


def _status(workspace_id: str, run_id: str, conn: Connection) -> RunStatus:
    status = conn.scalar(_STATUS, {"run_id": run_id, "workspace_id": workspace_id})
    if status is None:
        raise NotFound(f"task run {run_id} not found")
    return RunStatus(status)


def _statuses(workspace_id: str, run_ids: list[str], conn: Connection) -> dict[str, RunStatus]:
    params = {"run_ids": run_ids, "workspace_id": workspace_id}
    return {run_id: RunStatus(status) for run_id, status in conn.execute(_STATUSES, params)}


def _attempts_by_run(conn: Connection, run_ids: Sequence[str]) -> dict[str, list[AnyRow]]:
    grouped: dict[str, list[AnyRow]] = defaultdict(list)
    if run_ids:
        rows = conn.execute(
            select(attempts).where(attempts.c.run_id.in_(run_ids)).order_by(attempts.c.number)
        )
        for row in rows:
            grouped[row.run_id].append(row)
    return grouped


@dataclass(frozen=True)
class ChildState:
    status: RunStatus
    deliverable: RunInfo | None  # the ended child, when its result may be delivered now


def _child_state(
    attempt_id: str, run_id: str, child_id: str, conn: Connection
) -> tuple[RunStatus, tuple[AnyRow, list[AnyRow]] | None]:
    text = conn.scalar(_CHILD_STATUS, {"run_id": run_id, "child_id": child_id})
    if text is None:
        raise NotFound(f"task run {child_id} is not a child of run {run_id}")
    status = RunStatus(text)
    if not status.terminal or not _may_deliver(attempt_id, child_id, conn):
        return status, None
    return status, _run_and_attempts(None, child_id, conn)


def _may_deliver(attempt_id: str, child_id: str, conn: Connection) -> bool:
    attempt = conn.execute(_WAITING, {"attempt_id": attempt_id}).one()
    if not attempt.waiting:
        return True
    params = {"run_id": attempt.run_id, "number": attempt.number, "child_id": child_id}
    return bool(conn.scalar(_OTHER_AWAITED, params))


def versions_of(
    workspace_id: str,
    workflow_id: str | None,
    conn: Connection,
    *,
    version_ids: list[str] | None = None,
) -> list[VersionInfo]:
    """Newest first; only `version_ids` when given (an empty list gives none)."""
    if version_ids is not None and not version_ids:
        return []
    query = (
        select(versions)
        .join(workflows, workflows.c.id == versions.c.workflow_id)
        .where(workflows.c.workspace_id == workspace_id)
        .order_by(versions.c.id.desc())
    )
    if workflow_id:
        query = query.where(versions.c.workflow_id == workflow_id)
    if version_ids is not None:
        query = query.where(versions.c.id.in_(version_ids))
    rows = conn.execute(query).all()
    names: dict[str, list[str]] = defaultdict(list)
    if rows:
        named = conn.execute(
            select(tasks.c.version_id, tasks.c.name)
            .where(tasks.c.version_id.in_([v.id for v in rows]))
            .order_by(tasks.c.name)
        )
        for version_id, name in named:
            names[version_id].append(name)
    return [
        VersionInfo(
            id=v.id,
            workflow_id=v.workflow_id,
            status=VersionStatus(v.status),
            created_at=v.created_at,
            message=v.message,
            task_names=tuple(names[v.id]),
        )
        for v in rows
    ]


def resolve_task(workspace_id: str, task_ref: str, conn: Connection) -> TaskInfo:
    """A task by `wf/task[:version]`, by bare name when unambiguous, or by its `tsk-` id."""
    base = _TASKS
    if task_ref.startswith("tsk-") and "/" not in task_ref:
        row = (
            conn.execute(
                base.where(workflows.c.workspace_id == workspace_id, tasks.c.id == task_ref)
            )
        ).first()
        if row is None:
            raise NotFound(f"task {task_ref!r} not found")
        return task_info(row, row.slug)
    slug, name, version_id = parse_task_ref(task_ref)
    if slug is not None and version_id is None:  # the common case, with a statement built once
        params = {"workspace_id": workspace_id, "name": name, "slug": slug}
        row = conn.execute(_ACTIVE_TASK, params).first()
        if row is None:
            raise _task_not_found(conn, workspace_id, task_ref, version_id)
        return task_info(row, row.slug)
    query = base.where(workflows.c.workspace_id == workspace_id, tasks.c.name == name)
    if slug is not None:
        query = query.where(workflows.c.slug == slug)
    if version_id is not None:
        query = query.join(versions, versions.c.id == tasks.c.version_id).where(
            versions.c.id == version_id, versions.c.status == VersionStatus.READY.value
        )
    else:
        query = query.where(tasks.c.version_id == workflows.c.active_version_id)
    rows = (conn.execute(query)).all()
    if not rows:
        raise _task_not_found(conn, workspace_id, task_ref, version_id)
    if len(rows) > 1:
        raise InvalidRequest(f"task {name!r} is in several workflows: name it as 'workflow/task'")
    return task_info(rows[0], rows[0].slug)


def _task_not_found(
    conn: Connection, workspace_id: str, task_ref: str, version_id: str | None
) -> NotFound:
    """NotFound naming the closest task slug of the active versions, when one is close."""
    rows = conn.execute(
        select(workflows.c.slug, tasks.c.name)
        .join(workflows, workflows.c.id == tasks.c.workflow_id)
        .where(
            workflows.c.workspace_id == workspace_id,
            tasks.c.version_id == workflows.c.active_version_id,
        )
    )
    slugs = [f"{slug}/{name}" for slug, name in rows]
    wanted = task_ref.rsplit(":", 1)[0] if version_id else task_ref
    close = difflib.get_close_matches(wanted, slugs, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close and close[0] != wanted else ""
    return NotFound(f"task {task_ref!r} not found{hint}")
