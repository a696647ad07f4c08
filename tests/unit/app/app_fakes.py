"""An in-memory stand-in for the Runtime, enough to drive the HTTP layer without the engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, cast

from app.server import create_app
from core.auth import KeyIdentity
from core.domain import (
    JSON,
    AttemptInfo,
    AttemptOutcome,
    AttemptState,
    LogChunk,
    Page,
    RetryPolicy,
    RunFilter,
    RunInfo,
    RunStatus,
    TaskInfo,
    TaskOptions,
    TaskParameter,
    VersionInfo,
    VersionStatus,
    WorkflowInfo,
)
from core.errors import NotFound
from core.events import EventBus
from core.settings import Settings
from scheduler.flows.tables import StepInfo, StepStatus, StepType
from scheduler.runs.catalog import TaskFilter, VersionFilter, WorkflowFilter
from scheduler.runs.queue import QueuedRun, QueueView, WaitReason
from scheduler.runs.timeline import TreeHistory
from scheduler.runtime import Runtime

WS = "wsp-default"
T0 = datetime(2026, 11, 25, 21, 18, 8, 123456, tzinfo=UTC)


def make_attempt(
    number: int = 0, outcome: AttemptOutcome | None = AttemptOutcome.OK, **changes: Any
) -> AttemptInfo:
    base = AttemptInfo(
        number=number,
        state=AttemptState.ENDED if outcome else AttemptState.RUNNING,
        outcome=outcome,
        enqueued_at=T0,
        started_at=T0,
        ended_at=T0 if outcome else None,
        waiting=False,
        error=None,
        stack_trace=None,
        compute_seconds=0.5 if outcome else None,
        cost_usd=0.0001 if outcome else None,
        exit_code=0 if outcome else None,
    )
    return replace(base, **changes)


def make_run(
    run_id: str = "trn-1", status: RunStatus = RunStatus.SUCCEEDED, **changes: Any
) -> RunInfo:
    terminal = status.terminal
    base = RunInfo(
        id=run_id,
        workspace_id=WS,
        task_id="tsk-1",
        task_name="square",
        workflow_id="wf-1",
        workflow_slug="hello",
        version_id="wfv-1",
        status=status,
        waiting=False,
        parent_id=None,
        parent_attempt=None,
        root_id=run_id,
        created_at=T0,
        started_at=T0 if status is not RunStatus.PENDING else None,
        completed_at=T0 if terminal else None,
        not_before=None,
        attempts=(make_attempt(),) if terminal else (),
        input=[7],
        results=[49] if status is RunStatus.SUCCEEDED else None,
        error=None,
        stack_trace=None,
    )
    return replace(base, **changes)


def make_step(seq: int, kind: StepType, status: StepStatus, **values: Any) -> StepInfo:
    """A step record; the columns a test does not name are empty."""
    known: dict[str, Any] = {
        "run_id": "trn-1",
        "seq": seq,
        "type": kind,
        "name": f"step{seq}",
        "input_hash": "0" * 64,
        "status": status,
        "flow_attempt": 0,
        "error": None,
        "attempts": [],
        "wake_at": None,
        "child_run_id": None,
        "started_at": T0,
        "completed_at": None,
        **values,
    }
    columns: dict[str, Any] = {f.name: known.get(f.name) for f in fields(StepInfo)}
    return StepInfo(**columns)


def make_task(name: str = "square") -> TaskInfo:
    return TaskInfo(
        id=f"tsk-{name}",
        name=name,
        workflow_id="wf-1",
        workflow_slug="hello",
        version_id="wfv-1",
        created_at=T0,
        options=TaskOptions(retry=RetryPolicy(3, 1000, 2.0), timeout_seconds=60, plan="starter"),
        parameters=(TaskParameter("a", "int", False, None), TaskParameter("b", None, True, "2")),
    )


INT = {"type": "integer"}
# A task of Conveyor's SDK: every parameter with the JSON Schema the SDK registers.
TYPED_PARAMETERS = (
    TaskParameter("count", "int", False, None, INT),
    TaskParameter("ratio", "float", True, "1.5", {"type": "number"}),
    TaskParameter("name", "str", False, None, {"type": "string"}),
    TaskParameter("loud", "bool", True, "false", {"type": "boolean"}),
    TaskParameter("color", "Color", True, '"red"', {"enum": ["red", "green"], "title": "Color"}),
    TaskParameter("items", "list", True, None, {"items": INT, "type": "array"}),
)


def make_typed_task() -> TaskInfo:
    return replace(
        make_task("typed"),
        parameters=TYPED_PARAMETERS,
        description="Counts things.\n\nThe second paragraph.",
    )


@dataclass
class FakeKeys:
    keys: dict[str, str] = field(default_factory=lambda: {"cvy_good": "wsp-key"})
    revoked: set[str] = field(default_factory=set)  # key ids

    async def identify(self, secret: str) -> KeyIdentity | None:
        workspace = self.keys.get(secret)
        key_id = f"key-{secret}"
        if workspace is None or key_id in self.revoked:
            return None
        return KeyIdentity(key_id, workspace, secret[:10], admin=False)

    async def authenticate(self, secret: str) -> str | None:
        identity = await self.identify(secret)
        return None if identity is None else identity.workspace_id

    async def is_usable(self, key_id: str) -> bool:
        return key_id not in self.revoked


@dataclass
class FakeService:
    runs: dict[str, RunInfo] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    log: bytes = b"hello\nworld\n"
    end_event: asyncio.Event | None = None

    async def create_run(
        self, workspace_id: str, task_ref: str, input: Any, idempotency_key: str | None = None
    ) -> RunInfo:
        self.calls.append(("create", (workspace_id, task_ref, input, idempotency_key)))
        if task_ref == "hello/missing":
            raise NotFound(f"task {task_ref} not found")
        run = make_run(f"trn-{len(self.runs) + 1}", RunStatus.PENDING, input=input)
        self.runs[run.id] = run
        return run

    async def get_run(self, workspace_id: str, run_id: str) -> RunInfo:
        self.calls.append(("get", (workspace_id, run_id)))
        if run_id not in self.runs:
            raise NotFound(f"run {run_id} not found")
        return self.runs[run_id]

    async def run_statuses(self, workspace_id: str, run_ids: list[str]) -> dict[str, RunStatus]:
        self.calls.append(("statuses", (workspace_id, tuple(run_ids))))
        return {run_id: (await self.get_run(workspace_id, run_id)).status for run_id in run_ids}

    async def flow_steps(self, workspace_id: str, run_id: str) -> list[StepInfo]:
        return []  # the fakes' runs are tasks' runs

    async def wait_run(self, workspace_id: str, run_id: str, seconds: float) -> RunInfo:
        self.calls.append(("wait", seconds))
        return await self.get_run(workspace_id, run_id)

    async def list_runs(
        self, workspace_id: str, run_filter: RunFilter, *, cursor: str | None, limit: int
    ) -> Page[RunInfo]:
        self.calls.append(("list", (run_filter, cursor, limit)))
        found = [
            r for r in self.runs.values() if not run_filter.run_ids or r.id in run_filter.run_ids
        ]
        return Page(found[:limit], None)

    async def cancel_run(self, workspace_id: str, run_id: str) -> RunInfo:
        self.calls.append(("cancel", run_id))
        run = await self.get_run(workspace_id, run_id)
        return replace(run, status=RunStatus.CANCELED)

    async def watch_runs(self, workspace_id: str, run_ids: list[str]) -> AsyncIterator[RunInfo]:
        for run_id in run_ids:
            run = self.runs[run_id]
            if not run.status.terminal and self.end_event is not None:
                await self.end_event.wait()
                run = replace(run, status=RunStatus.SUCCEEDED, results=[1])
            yield run

    async def read_log(
        self, workspace_id: str, run_id: str, attempt: int | None, offset: int = 0
    ) -> LogChunk:
        await self.get_run(workspace_id, run_id)
        data = self.log[offset : offset + 6]
        return LogChunk(data, offset + len(data), attempt or 0, finished=True)

    async def follow_log(
        self, workspace_id: str, run_id: str, attempt: int | None, offset: int = 0
    ) -> AsyncIterator[bytes]:
        yield self.log[offset:]

    async def log_stamps(
        self, workspace_id: str, run_id: str, attempt: int | None
    ) -> list[tuple[int, int]]:
        await self.get_run(workspace_id, run_id)
        return [(6, 1_796_000_000_250)]  # "hello\n" was seen then; "world\n" only at the end

    async def list_tasks(
        self,
        workspace_id: str,
        *,
        workflow_id: str | None,
        cursor: str | None,
        limit: int,
        task_filter: TaskFilter | None = None,
    ) -> Page[TaskInfo]:
        self.calls.append(("list_tasks", task_filter))
        return Page([make_task(), make_task("add")], None)

    async def get_task(self, workspace_id: str, task_ref: str) -> TaskInfo:
        if task_ref == "hello/typed":
            return make_typed_task()
        if task_ref != "hello/square":
            raise NotFound(f"task {task_ref} not found")
        return make_task()

    async def list_workflows(self, workspace_id: str) -> list[WorkflowInfo]:
        return [
            WorkflowInfo("wf-1", "hello", "hello", "conveyor-worker main:app", "/src", "wfv-1", T0)
        ]

    async def list_versions(self, workspace_id: str, workflow_id: str | None) -> list[VersionInfo]:
        return [VersionInfo("wfv-1", "wf-1", VersionStatus.READY, T0, None, ("square",))]

    async def find_workflows(
        self, workspace_id: str, workflow_filter: WorkflowFilter, *, cursor: str | None, limit: int
    ) -> Page[WorkflowInfo]:
        self.calls.append(("find_workflows", workflow_filter))
        return Page(await self.list_workflows(workspace_id), None)

    async def find_versions(
        self, workspace_id: str, version_filter: VersionFilter, *, cursor: str | None, limit: int
    ) -> Page[VersionInfo]:
        self.calls.append(("find_versions", version_filter))
        return Page(await self.list_versions(workspace_id, None), None)

    async def get_version(self, workspace_id: str, version_id: str) -> VersionInfo:
        if version_id != "wfv-1":
            raise NotFound(f"workflow version {version_id} not found")
        return (await self.list_versions(workspace_id, None))[0]

    async def usage(self, workspace_id: str) -> dict[str, JSON]:
        return {"computeSeconds": 1.5}

    async def run_summaries(self, workspace_id: str, run_ids: list[str]) -> list[RunInfo]:
        found = [self.runs[i] for i in run_ids if i in self.runs]
        return sorted(found, key=lambda run: run.id, reverse=True)

    async def tree_history(
        self, workspace_id: str, root_id: str, limit: int, *, include: str | None = None
    ) -> TreeHistory:
        tree = sorted((r for r in self.runs.values() if r.root_id == root_id), key=lambda r: r.id)
        return TreeHistory(root_id, tree[:limit], len(tree))

    async def queue(self, workspace_id: str, shown: int = 100) -> QueueView:
        pending = [r for r in self.runs.values() if r.status is RunStatus.PENDING][:shown]
        queued = [QueuedRun(r, WaitReason.WORKSPACE_LIMIT, r.created_at) for r in pending]
        return QueueView(2, 2, 0, len(pending), 0, None, None, queued, [], [])

    async def run_ids_starting(self, workspace_id: str, prefix: str, limit: int) -> list[str]:
        return sorted(i for i in self.runs if i.startswith(prefix))[:limit]


@dataclass
class FakeStore:
    bus: EventBus = field(default_factory=EventBus)


@dataclass
class FakeRuntime:
    settings: Settings = field(default_factory=Settings)
    service: FakeService = field(default_factory=FakeService)
    keys: FakeKeys = field(default_factory=FakeKeys)
    store: FakeStore = field(default_factory=FakeStore)


def fake_app(runtime: FakeRuntime, anonymous: str | None = WS, ping: float = 25.0) -> Any:
    return create_app(cast(Runtime, runtime), anonymous_workspace=anonymous, sse_ping_seconds=ping)
