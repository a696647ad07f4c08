"""Two `conveyor scheduler` processes on one PostgreSQL database share the work safely."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.db.models import Attempt, AttemptEvent, TaskRun
from core.domain import RunStatus
from scheduler.runtime import Runtime
from tests.integration.databases import fresh_database
from tests.integration.engine_fixtures import (
    PASS_SCRATCH_ENV,
    WS,
    copy_workflow,
    make_settings,
    max_active_attempts,
)
from tests.integration.host_processes import find

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(600)]

RUNS = 500
LIMIT = 4
CONVEYOR = str(Path(sys.executable).with_name("conveyor"))


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgres", tmp_path) as url:
        yield url


def _schedulers(url: str, data_dir: Path, count: int) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        **PASS_SCRATCH_ENV,
        "CONVEYOR_DATABASE__URL": url,
        "CONVEYOR_DATA_DIR": str(data_dir),
        "CONVEYOR_LIMITS__MAX_CONCURRENCY": str(LIMIT),
        "CONVEYOR_LIMITS__MIN_TIMEOUT_SECONDS": "1",
        # a scheduler learns that another joined at its next heartbeat: 500 runs can be done
        # within the default 5 s, before the one that started first ever shares its slots
        "CONVEYOR_SCHEDULER__HEARTBEAT_SECONDS": "0.5",
    }
    processes = []
    for n in range(count):
        with (data_dir.parent / f"scheduler-{n}.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [CONVEYOR, "scheduler"], env=env, stdout=log, stderr=subprocess.STDOUT
                )
            )
    return processes


async def test_two_schedulers_start_every_attempt_once_under_one_limit(
    tmp_path: Path, postgres_url: str
) -> None:
    data_dir = tmp_path / "data"
    runtime = await Runtime.open(make_settings(data_dir, postgres_url, max_concurrency=LIMIT))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        version = await runtime.register_workflow(
            copy_workflow("engine", tmp_path), slug="wf", start_command="conveyor-worker main:app"
        )
        assert version.task_names
        processes = _schedulers(postgres_url, data_dir, 2)
        runs = [await runtime.service.create_run(WS, "wf/leaf", [n]) for n in range(RUNS)]
        await runtime.run_until_idle(timeout=540)
        async with runtime.store.sessions() as session:
            statuses = Counter(await session.scalars(select(TaskRun.status)))
            attempts_per_run = Counter(await session.scalars(select(Attempt.run_id)))
            starts = Counter(
                await session.scalars(
                    select(AttemptEvent.attempt_id).where(AttemptEvent.kind == "started")
                )
            )
            owners = await session.scalar(select(func.count(func.distinct(Attempt.scheduler_id))))
        assert statuses == {RunStatus.SUCCEEDED.value: RUNS}
        assert set(attempts_per_run.values()) == {1}, "every run took exactly one attempt"
        assert len(starts) == RUNS and set(starts.values()) == {1}, "each attempt started once"
        assert owners == 2, "both schedulers took work"
        assert await max_active_attempts(runtime) <= LIMIT
        sample = await runtime.service.get_run(WS, runs[123].id)
        assert sample.results == [124]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            assert process.wait(timeout=30) == 0
        await runtime.close()


async def test_a_stopped_scheduler_leaves_its_runs_to_another(
    tmp_path: Path, postgres_url: str, scratch: Path
) -> None:
    data_dir = tmp_path / "data"
    runtime = await Runtime.open(make_settings(data_dir, postgres_url))
    try:
        await runtime.register_workflow(
            copy_workflow("engine", tmp_path), slug="wf", start_command="conveyor-worker main:app"
        )
        (first,) = _schedulers(postgres_url, data_dir, 1)
        run = await runtime.service.create_run(WS, "wf/hold", ["h"])
        pid_file = scratch / "pid-h"
        await runtime.service.wait_run(WS, run.id, 0)
        async with asyncio.timeout(30):
            while not pid_file.exists() or not pid_file.read_text():
                await asyncio.sleep(0.05)
        worker = find(pid_file.read_text())  # the task's pid in its own PID namespace
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
        os.kill(worker, 0)  # SIGTERM stops admitting; it leaves the instance to reconcile
        pid_file.unlink()
        (scratch / "release-h").write_text("go")
        (second,) = _schedulers(postgres_url, data_dir, 1)
        try:
            done = await runtime.service.wait_run(WS, run.id, 60)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0
        assert done.status is RunStatus.SUCCEEDED
        # on the same host the other scheduler watches the instance again: its result counts
        assert [a.outcome for a in done.attempts] == ["ok"]
    finally:
        await runtime.close()
