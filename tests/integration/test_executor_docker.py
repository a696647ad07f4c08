"""The Docker executor on the host's real daemon: one container per attempt, limits, cleanup."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from sqlalchemy import select

from core.db.models import Attempt
from core.domain import AttemptOutcome, RunStatus
from core.settings import DockerSettings, Plan
from scheduler.executors.base import AttemptSpec, InstanceStatus, Mode
from scheduler.executors.docker import DockerExecutor, DockerStartError
from scheduler.runtime import Runtime
from tests.integration.docker_fixtures import (
    DOCKER,
    containers_of_run,
    docker,
    docker_settings,
    open_docker_engine,
    wait_for,
    worker_image,
)
from tests.integration.engine_fixtures import WS, run_to_end
from tests.integration.task_environment import assert_task_environment, plant_control_plane_secrets

__all__ = ["docker", "worker_image"]  # re-exported: pytest finds fixtures by module name

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _handles(runtime: Runtime, run_id: str) -> list[dict[str, str]]:
    async with runtime.store.sessions() as session:
        rows = await session.scalars(
            select(Attempt.handle).where(Attempt.run_id == run_id).order_by(Attempt.number)
        )
        return [json.loads(handle) for handle in rows if handle]


async def _wait_for_handle(runtime: Runtime, run_id: str, count: int = 1) -> None:
    deadline = time.monotonic() + 30
    while len(await _handles(runtime, run_id)) < count:
        assert time.monotonic() < deadline, f"no handle stored for {run_id}"
        await asyncio.sleep(0.05)


async def _all_removed(docker: DockerClient, run_id: str) -> None:
    await wait_for(lambda: containers_of_run(docker, run_id) == [], what=f"{run_id} removed")


async def _log(runtime: Runtime, run_id: str, attempt: int) -> str:
    chunk = await runtime.service.read_log(WS, run_id, attempt, 0)
    return chunk.data.decode()


async def test_runs_are_isolated_in_their_own_containers(
    tmp_path: Path, worker_image: str, docker: DockerClient
) -> None:
    async with open_docker_engine(tmp_path, worker_image) as runtime:
        first = await run_to_end(runtime, "wf/look_around", ["first"])
        second = await run_to_end(runtime, "wf/look_around", ["second"])
        assert first.status is RunStatus.SUCCEEDED, first.error
        assert second.status is RunStatus.SUCCEEDED, second.error
        assert first.results is not None and second.results is not None
        assert first.results[0]["hostname"] != second.results[0]["hostname"]
        assert second.results[0]["seen_before"] == []  # the first run's file is not there
        for finished in (first, second):
            await _wait_for_handle(runtime, finished.id)  # a deferred write
        first_handle, second_handle = [(await _handles(runtime, r.id))[0] for r in (first, second)]
        assert first_handle["id"] != second_handle["id"]
        for run in (first, second):  # removed once ended (the result can come a moment before)
            await _all_removed(docker, run.id)


async def test_memory_past_the_plan_is_out_of_memory(tmp_path: Path, worker_image: str) -> None:
    async with open_docker_engine(tmp_path, worker_image) as runtime:
        started = time.monotonic()
        run = await run_to_end(runtime, "wf/hog", [1024])  # `starter`: 512 MB
        elapsed = time.monotonic() - started
    assert run.status is RunStatus.FAILED
    (attempt,) = run.attempts
    assert attempt.outcome is AttemptOutcome.OUT_OF_MEMORY, attempt.error
    assert attempt.exit_code == 137
    assert elapsed < 30


async def test_a_timeout_stops_and_removes_the_container(
    tmp_path: Path, worker_image: str, docker: DockerClient
) -> None:
    async with open_docker_engine(tmp_path, worker_image) as runtime:
        run = await run_to_end(runtime, "wf/overstays", [])
        assert run.status is RunStatus.FAILED
        assert run.attempts[0].outcome is AttemptOutcome.TIMEOUT
        assert "overstaying" in await _log(runtime, run.id, 0)
        await _all_removed(docker, run.id)


async def test_cancel_removes_the_container(
    tmp_path: Path, worker_image: str, docker: DockerClient
) -> None:
    async with open_docker_engine(tmp_path, worker_image) as runtime:
        run = await runtime.service.create_run(WS, "wf/hold", [])
        (container,) = await wait_for(
            lambda: [c for c in containers_of_run(docker, run.id) if c.state.running],
            what="the run's container running",
        )
        assert container.config.labels is not None
        assert container.config.labels["conveyor.attempt"]
        await runtime.service.cancel_run(WS, run.id)
        done = await runtime.service.wait_run(WS, run.id, 30)
        assert done.status is RunStatus.CANCELED
        await wait_for(lambda: not docker.container.exists(container.id), what="container removed")


async def test_stdout_and_stderr_reach_the_attempt_log(tmp_path: Path, worker_image: str) -> None:
    async with open_docker_engine(tmp_path, worker_image) as runtime:
        run = await run_to_end(runtime, "wf/chatter", [3])
        assert run.status is RunStatus.SUCCEEDED, run.error
        log = await _log(runtime, run.id, 0)
    for i in range(3):
        assert f"out line {i}" in log
        assert f"err line {i}" in log


async def test_a_retry_runs_in_a_new_container(tmp_path: Path, worker_image: str) -> None:
    async with open_docker_engine(tmp_path, worker_image) as runtime:
        run = await run_to_end(runtime, "wf/fails_first", ["marker"])
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert [a.outcome for a in run.attempts] == [AttemptOutcome.ERROR, AttemptOutcome.OK]
        assert run.results is not None
        hostname, marker = str(run.results[0]).split()
        assert marker == "marker=False"  # the first container's file did not follow
        assert "attempt 0 in " in (first_log := await _log(runtime, run.id, 0))
        assert hostname not in first_log
        await _wait_for_handle(runtime, run.id, 2)
        handles = await _handles(runtime, run.id)
        assert len({h["id"] for h in handles}) == 2


async def test_reconcile_stops_a_container_left_by_a_previous_control_plane(
    tmp_path: Path, worker_image: str, docker: DockerClient
) -> None:
    async with open_docker_engine(tmp_path, worker_image, stop_instances=False) as runtime:
        run = await runtime.service.create_run(WS, "wf/hold", [])
        (container,) = await wait_for(
            lambda: [c for c in containers_of_run(docker, run.id) if c.state.running],
            what="the run's container running",
        )
        # the handle is stored just after the container starts: closing earlier would orphan it
        # (the scheduler's race, not the executor's)
        await _wait_for_handle(runtime, run.id)
    assert docker.container.inspect(container.id).state.running  # it outlived the engine

    restarted = await Runtime.open(docker_settings(tmp_path / "data", worker_image))
    try:
        await restarted.start()  # reconciles first
        await wait_for(lambda: not docker.container.exists(container.id), what="container gone")
        after = await restarted.service.get_run(WS, run.id)
        assert after.attempts[0].outcome is AttemptOutcome.LOST
        # the lost attempt is retried; end that one too, so no container outlives the test
        # (once its handle is stored: a cancel during the launch is not seen by the scheduler)
        await _wait_for_handle(restarted, run.id, count=2)
        await restarted.service.cancel_run(WS, run.id)
        await _all_removed(docker, run.id)
    finally:
        await restarted.close()


def _spec(tmp_path: Path, name: str, command: str) -> AttemptSpec:
    attempt_id = (
        f"att-{name}-{uuid.uuid4().hex[:8]}"  # a leftover of a killed session never clashes
    )
    folder = tmp_path / "sock"
    folder.mkdir(mode=0o700, exist_ok=True)
    return AttemptSpec(
        attempt_id=attempt_id,
        run_id="trn-direct",
        attempt=0,
        mode=Mode.RUN,
        start_command=command,
        cwd=tmp_path,
        socket_path=folder / "s",
        log_path=tmp_path / "log" / f"{name}.log",
        plan=Plan(name="tiny", cpu=0.5, memory_mb=128, usd_per_hour=0),
    )


async def test_executor_states_and_limits(
    tmp_path: Path, worker_image: str, docker: DockerClient
) -> None:
    executor = DockerExecutor(DockerSettings(binary=DOCKER, image=worker_image, network="none"))
    handle = await executor.start(
        _spec(tmp_path, "limits", "sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes'")
    )
    container = docker.container.inspect(handle["id"])
    assert container.name.startswith("conveyor-att-limits-")
    assert container.host_config.nano_cpus == 500_000_000
    assert container.host_config.memory == container.host_config.memory_swap == 128 * 2**20
    state = await executor.wait(handle)
    assert (state.status, state.exit_code, state.out_of_memory) == (InstanceStatus.EXITED, 0, False)
    assert (tmp_path / "log" / "limits.log").read_text().strip() == str(128 * 2**20)
    assert not docker.container.exists(handle["id"])
    assert (await executor.status(handle)).status is InstanceStatus.UNKNOWN


async def test_stop_escalates_to_kill_after_the_grace(tmp_path: Path, worker_image: str) -> None:
    executor = DockerExecutor(DockerSettings(binary=DOCKER, image=worker_image, network="none"))
    # ignores TERM: only the KILL after the grace ends it
    command = "sh -c 'trap \"\" TERM; echo ready; while true; do sleep 0.1; done'"
    handle = await executor.start(_spec(tmp_path, "stubborn", command))
    assert (await executor.status(handle)).status is InstanceStatus.ALIVE
    started = time.monotonic()
    await executor.stop(handle, 1.0)
    assert 0.9 < time.monotonic() - started < 10
    assert (await executor.wait(handle)).exit_code == 137


async def test_a_missing_image_is_a_clear_error(tmp_path: Path, docker: DockerClient) -> None:
    executor = DockerExecutor(DockerSettings(binary=DOCKER, image="conveyor-no-such:image"))
    with pytest.raises(
        DockerStartError, match=r"att-missing-.*conveyor-no-such:image.*No such image"
    ):
        await executor.start(_spec(tmp_path, "missing", "true"))


async def test_a_container_sees_its_workflow_environment_and_nothing_of_the_server(
    tmp_path: Path, worker_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_vars = {"GREETING": "hello from the workflow"}
    async with open_docker_engine(tmp_path, worker_image, env_vars=env_vars) as runtime:
        plant_control_plane_secrets(monkeypatch)
        run = await run_to_end(runtime, "wf/environment", [])
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.results is not None
    assert_task_environment(run.results[0], run_id=run.id)
