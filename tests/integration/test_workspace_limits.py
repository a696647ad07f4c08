"""A workspace's concurrency limit is data: no process's setting overrides it.

A process's `--max-concurrency` (or CONVEYOR_LIMITS__MAX_CONCURRENCY) only seeds a workspace
that has none; a different value is logged and ignored. The limit changes through the API or
`conveyor workspace set`, and the schedulers follow it. Proved by replaying the slot history
(`attempt_events`) with server and scheduler started in both orders.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.models import AttemptEvent
from scheduler.runtime import Runtime
from tests.integration.databases import fresh_database
from tests.integration.dev_server import CONVEYOR
from tests.integration.engine_fixtures import WS, copy_workflow, make_settings

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgres", tmp_path) as url:
        yield url


@contextmanager
def _process(
    argv: list[str], url: str, data_dir: Path, ready: str, **settings: str
) -> Iterator[Path]:
    """A conveyor process on the database; its log once it printed `ready`."""
    log = data_dir.parent / f"{argv[0]}-{time.monotonic_ns()}.log"
    env = {
        **os.environ,
        "CONVEYOR_DATABASE__URL": url,
        "CONVEYOR_DATA_DIR": str(data_dir),
        "CONVEYOR_LIMITS__MIN_TIMEOUT_SECONDS": "1",
        **settings,
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [CONVEYOR, *argv], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while ready not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield log
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _scheduler(url: str, data_dir: Path, limit: int) -> AbstractContextManager[Path]:
    argv = ["scheduler", "--max-concurrency", str(limit)]
    return _process(argv, url, data_dir, "Conveyor scheduler")


def _server(url: str, data_dir: Path, limit: int) -> AbstractContextManager[Path]:
    argv = ["server", "--port", "0"]  # the system picks it; nothing here calls it
    env = {"CONVEYOR_LIMITS__MAX_CONCURRENCY": str(limit)}
    return _process(argv, url, data_dir, "Conveyor API on", **env)


async def _most_active(runtime: Runtime, after: int = 0) -> tuple[int, int]:
    """The most attempts that held a slot at once, replayed from the slot history past event
    `after`; and the last event's id."""
    async with runtime.store.sessions() as session:
        events = list(await session.scalars(select(AttemptEvent).order_by(AttemptEvent.id)))
    active: set[str] = set()
    highest = 0
    for event in events:
        if event.kind in ("started", "resumed"):
            active.add(event.attempt_id)
        else:
            active.discard(event.attempt_id)
        if event.id > after:
            highest = max(highest, len(active))
    return highest, events[-1].id if events else 0


async def _naps(runtime: Runtime, count: int) -> None:
    runs = [await runtime.service.create_run(WS, "wf/nap", [0.3]) for _ in range(count)]
    for run in runs:
        done = await runtime.service.wait_run(WS, run.id, 60)
        assert done.status.value == "succeeded", done.error


async def _engine(tmp_path: Path, url: str) -> Runtime:
    """The test's own view of the database: it registers the workflow and starts runs (its
    setting seeds nothing: the workspace exists by then)."""
    runtime = await Runtime.open(make_settings(tmp_path / "data", url))
    version = await runtime.register_workflow(
        copy_workflow("engine", tmp_path), slug="wf", start_command="conveyor-worker main:app"
    )
    assert version.task_names
    return runtime


async def test_the_first_process_seeds_the_limit_and_a_later_one_keeps_it(
    tmp_path: Path, postgres_url: str
) -> None:
    data = tmp_path / "data"
    with _scheduler(postgres_url, data, 2), _server(postgres_url, data, 20) as server_log:
        assert "keeps its max concurrency of 2" in server_log.read_text()
        runtime = await _engine(tmp_path, postgres_url)
        try:
            await _naps(runtime, 8)
            highest, _ = await _most_active(runtime)
        finally:
            await runtime.close()
    assert highest == 2, "the scheduler's seed held, not the server's later setting"


async def test_a_limit_changes_only_as_data(tmp_path: Path, postgres_url: str) -> None:
    data = tmp_path / "data"
    with _server(postgres_url, data, 3), _scheduler(postgres_url, data, 2) as scheduler_log:
        assert "keeps its max concurrency of 3" in scheduler_log.read_text()
        runtime = await _engine(tmp_path, postgres_url)
        try:
            await _naps(runtime, 9)
            seeded, last = await _most_active(runtime)
            changed = await asyncio.to_thread(
                subprocess.run,
                [CONVEYOR, "workspace", "set", "--max-concurrency", "1", "--data-dir", str(data)],
                env={**os.environ, "CONVEYOR_DATABASE__URL": postgres_url},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert changed.returncode == 0, changed.stderr
            await _naps(runtime, 4)
            after_change, _ = await _most_active(runtime, after=last)
        finally:
            await runtime.close()
    assert seeded == 3, "the server's seed held, not the scheduler's later flag"
    assert after_change == 1, "the schedulers follow a limit changed as data"
