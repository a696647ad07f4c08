"""Open a real engine (SQLite, blobs, local processes) on a temporary data dir."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.db.models import Attempt, AttemptEvent, TaskRun
from core.domain import RunInfo, VersionStatus
from core.settings import DatabaseSettings, ExecutorSettings, LimitSettings, Settings
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime

WORKFLOWS = Path(__file__).parent / "workflows"
WS = DEFAULT_WORKSPACE_ID


def executor_settings(**options: Any) -> ExecutorSettings:
    """Test executors: a short kill grace, and the scratch folder's variable passed to tasks."""
    pass_env = (*ExecutorSettings().pass_env, "ENGINE_SCRATCH")
    return ExecutorSettings(**{"kill_grace_seconds": 1.0, "pass_env": pass_env, **options})


# for engines started as subprocesses (`conveyor dev`, `conveyor scheduler`)
PASS_SCRATCH_ENV = {"CONVEYOR_EXECUTOR__PASS_ENV": '["ENGINE_SCRATCH"]'}


def make_settings(
    data_dir: Path,
    database_url: str | None = None,
    *,
    executor: ExecutorSettings | None = None,
    **limits: Any,
) -> Settings:
    return Settings(
        data_dir=data_dir,
        database=DatabaseSettings(url=database_url),
        limits=LimitSettings(min_timeout_seconds=1, **limits),
        executor=executor or executor_settings(),
    )


def copy_workflow(name: str, destination: Path) -> Path:
    target = destination / name
    shutil.copytree(WORKFLOWS / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@asynccontextmanager
async def open_engine(
    tmp_path: Path,
    workflow: str = "engine",
    *,
    start_command: str = "conveyor-worker main:app",
    slug: str = "wf",
    database_url: str | None = None,
    executor: ExecutorSettings | None = None,
    **limits: Any,
) -> AsyncIterator[Runtime]:
    """A started engine with `workflow` registered; SQLite in `tmp_path` unless `database_url`."""
    settings = make_settings(tmp_path / "data", database_url, executor=executor, **limits)
    runtime = await Runtime.open(settings)
    try:
        version = await runtime.register_workflow(
            copy_workflow(workflow, tmp_path), slug=slug, start_command=start_command
        )
        assert version.status is VersionStatus.READY, version.message
        await runtime.start()
        yield runtime
    finally:
        await runtime.close()


async def run_to_end(runtime: Runtime, task: str, input: Any, timeout: float = 60) -> RunInfo:
    run = await runtime.service.create_run(WS, task, input)
    done = await runtime.service.wait_run(WS, run.id, timeout)
    assert done.status.terminal, f"{task} still {done.status} after {timeout} s"
    return done


async def max_active_attempts(runtime: Runtime, *, task_name: str | None = None) -> int:
    """Replays the slot history: the most attempts (of one task) that held a slot at one moment."""
    query = select(AttemptEvent).order_by(AttemptEvent.id)
    if task_name is not None:
        query = (
            query.join(Attempt, Attempt.id == AttemptEvent.attempt_id)
            .join(TaskRun, TaskRun.id == Attempt.run_id)
            .where(TaskRun.task_name == task_name)
        )
    async with runtime.store.sessions() as session:
        events = list(await session.scalars(query))
    active: set[str] = set()
    highest = 0
    for event in events:
        if event.kind in ("started", "resumed"):
            active.add(event.attempt_id)
        else:
            active.discard(event.attempt_id)
        highest = max(highest, len(active))
    return highest
