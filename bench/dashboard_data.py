"""The data `bench.dashboard` measures pages with: the real engine and app served on loopback,
with runs and attempts written straight into its database in the shapes the engine writes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from sqlalchemy import Connection, insert

from app.server import create_app
from core.domain import RunStatus, TaskInfo
from core.ids import new_id
from core.settings import LimitSettings, Settings
from scheduler.runs.rows import attempt_events, attempts, runs
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime

T = TypeVar("T")
WS = DEFAULT_WORKSPACE_ID
HELLO = Path(__file__).resolve().parents[1] / "examples" / "hello"
Prepare = Callable[[Runtime], Awaitable[None]]


@dataclass
class Served:
    url: str
    runtime: Runtime
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 300) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextmanager
def serve(data_dir: Path, prepare: Prepare, slots: int = 4) -> Iterator[Served]:
    """The engine and its app on a loopback port, in a thread of their own."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def run_server() -> None:
        settings = Settings(data_dir=data_dir, limits=LimitSettings(max_concurrency=slots))
        runtime = await Runtime.open(settings)
        await prepare(runtime)
        app = create_app(runtime, anonymous_workspace=WS)
        config = uvicorn.Config(app, port=0, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        box["server"] = server
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        box["served"] = Served(f"http://127.0.0.1:{port}", runtime, asyncio.get_running_loop())
        ready.set()
        await serving
        await runtime.close()

    thread = threading.Thread(target=lambda: asyncio.run(run_server()), daemon=True)
    thread.start()
    if not ready.wait(120):
        raise RuntimeError("the server did not start")
    try:
        yield box["served"]
    finally:
        box["server"].should_exit = True
        thread.join(30)


async def register_hello(runtime: Runtime) -> dict[str, TaskInfo]:
    command = "conveyor-worker main:app"
    version = await runtime.register_workflow(HELLO, slug="hello", start_command=command)
    assert version.task_names, version.message
    return {n: await runtime.service.get_task(WS, f"hello/{n}") for n in version.task_names}


@dataclass
class Rows:
    """Rows of runs, attempts and slot events, as the engine writes them."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def run(
        self,
        task: TaskInfo,
        at: datetime,
        *,
        root: str | None = None,
        parent: str | None = None,
        ended: datetime | None = None,
    ) -> str:
        run_id = new_id("trn", now_ms=int(at.timestamp() * 1000))
        status = RunStatus.SUCCEEDED if ended else RunStatus.RUNNING
        self.runs.append(
            {
                "id": run_id,
                "workspace_id": WS,
                "task_id": task.id,
                "task_name": task.name,
                "workflow_id": task.workflow_id,
                "workflow_slug": task.workflow_slug,
                "version_id": task.version_id,
                "status": status.value,
                "parent_id": parent,
                "parent_attempt": 0 if parent else None,
                "root_id": root or run_id,
                "awaited": parent is not None,
                "input_json": "[3]",
                "output_json": "[9]" if ended else None,
                "attempt_count": 1,
                "lost_count": 0,
                "created_at": at,
                "started_at": at,
                "completed_at": ended,
            }
        )
        return run_id

    def attempt(
        self, run_id: str, number: int, start: datetime, end: datetime | None, outcome: str = "ok"
    ) -> str:
        attempt_id = new_id("att")
        self.attempts.append(
            {
                "id": attempt_id,
                "run_id": run_id,
                "workspace_id": WS,
                "number": number,
                "state": "ended" if end else "running",
                "outcome": outcome if end else None,
                "waiting": False,
                "executor": "local",
                "plan": "standard",
                "enqueued_at": start,
                "started_at": start,
                "ended_at": end,
                "log_key": f"logs/{run_id}/{number}.log",
                "compute_seconds": (end - start).total_seconds() if end else None,
                "cost_usd": 0.00001 if end else None,
                "exit_code": 0 if end else None,
            }
        )
        return attempt_id

    def event(self, attempt_id: str, kind: str, at: datetime) -> None:
        self.events.append({"attempt_id": attempt_id, "workspace_id": WS, "kind": kind, "at": at})

    def write(self, conn: Connection) -> None:
        conn.execute(insert(runs), self.runs)
        conn.execute(insert(attempts), self.attempts)
        if self.events:
            conn.execute(insert(attempt_events), self.events)


def _tree(rows: Rows, root_task: TaskInfo, leaf_task: TaskInfo, size: int, t0: datetime) -> str:
    """A root, 9 branches and their leaves (1 in 20 retried once); the last leaf still runs."""
    root = rows.run(root_task, t0)
    rows.event(rows.attempt(root, 0, t0, None), "waiting", t0 + timedelta(seconds=0.3))
    branches = 9
    leaves = (size - 1 - branches) // branches
    for b in range(branches):
        at = t0 + timedelta(seconds=0.2 + b * 0.05)
        last = b == branches - 1
        branch_end = None if last else at + timedelta(seconds=60)
        branch = rows.run(root_task, at, root=root, parent=root, ended=branch_end)
        waiting = rows.attempt(branch, 0, at, branch_end)
        rows.event(waiting, "waiting", at + timedelta(seconds=0.1))
        if branch_end:
            rows.event(waiting, "resumed", branch_end - timedelta(seconds=0.1))
        for n in range(leaves):
            queued = at + timedelta(seconds=0.1 + n * 0.05)
            began = queued + timedelta(seconds=0.4)
            still = last and n == leaves - 1
            end = None if still else began + timedelta(seconds=0.5 + (n % 7) * 0.1)
            leaf = rows.run(leaf_task, queued, root=root, parent=branch, ended=end)
            if end is not None and n % 20 == 0:
                failed = began + timedelta(seconds=0.3)
                rows.attempt(leaf, 0, began, failed, "error")
                again = failed + timedelta(seconds=1)
                rows.attempt(leaf, 1, again, again + timedelta(seconds=0.4))
                rows.runs[-1] |= {
                    "completed_at": again + timedelta(seconds=0.4),
                    "attempt_count": 2,
                }
            else:
                rows.attempt(leaf, 0, began, end)
    return root


async def synthesize(runtime: Runtime, count: int, tree_size: int) -> str:
    """`count` finished root runs, and a tree of `tree_size` runs whose root id is returned."""
    tasks = await register_hello(runtime)
    now = datetime.now(UTC)
    rows = Rows()
    for n in range(count):
        at = now - timedelta(hours=1) + timedelta(milliseconds=300 * n)
        done = at + timedelta(seconds=0.2)
        rows.attempt(rows.run(tasks["square"], at, ended=done), 0, at, done)
    root = _tree(
        rows, tasks["sum_of_squares"], tasks["square"], tree_size, now - timedelta(seconds=90)
    )
    async with runtime.engine.begin() as conn:
        await conn.run_sync(rows.write)
    return root
