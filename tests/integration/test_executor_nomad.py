"""The Nomad executor end to end against the fake Nomad (tests/fakes/nomad.py).

Every attempt is a dispatch the fake runs as real processes: `conveyor agent` serving the
worker's socket and relaying over HTTP to a real uvicorn serving `create_app(runtime)`.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from core.domain import RunStatus
from scheduler.attempt_tokens import attempt_token
from scheduler.executors.nomad_api import NomadError, NomadHttpApi, NomadNotFound
from tests.fakes.nomad import FakeNomad
from tests.integration.nomad_checks import (
    check_cancel,
    check_relay_refuses_strangers,
    check_retries_and_logs,
    check_submit,
    check_timeout,
    handles,
)
from tests.integration.nomad_fixtures import (
    SECRET,
    WORKER_IMAGE,
    WS,
    NomadTarget,
    engine_settings,
    fake_target,
    nomad_engine,
    pid_alive,
    run_to_end,
    until,
)
from tests.integration.task_environment import assert_task_environment, plant_control_plane_secrets

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def target(tmp_path: Path) -> Iterator[NomadTarget]:
    with fake_target(tmp_path) as found:
        yield found


def fake_of(target: NomadTarget) -> FakeNomad:
    assert target.fake is not None
    return target.fake


async def test_submit_dispatches_a_parameterized_job(target: NomadTarget, tmp_path: Path) -> None:
    async with nomad_engine(target, tmp_path / "data") as engine:
        await check_submit(engine, target)
        fake = fake_of(target)
        (job,) = fake.registered_jobs().values()
        spec = job["Spec"]
        assert spec["ParameterizedJob"]["Payload"] == "required"
        worker, agent = (
            {t["Name"]: t for t in spec["TaskGroups"][0]["Tasks"]}[n] for n in ("worker", "agent")
        )
        assert agent["Lifecycle"] == {"Hook": "prestart", "Sidecar": True}
        assert worker["Resources"] == {"CPU": 100, "MemoryMB": 2048}
        assert worker["Env"]["RENDER_SDK_SOCKET_PATH"] == "${NOMAD_ALLOC_DIR}/conveyor.sock"
        dispatches = [p for m, p in fake.requests if m == "POST" and "/dispatch" in p]
        assert dispatches and all("idempotency_token=" in p for p in dispatches)
        # registration and the run share the job: registered once, never re-versioned
        assert fake.job_versions(spec["ID"]) == 0
        assert any("index=" in p and "wait=" in p for _, p in fake.requests), "blocking queries"


async def test_retries_are_new_dispatches_and_logs_are_copied(
    target: NomadTarget, tmp_path: Path
) -> None:
    async with nomad_engine(target, tmp_path / "data") as engine:
        await check_retries_and_logs(engine, target)


async def test_timeout_deregisters_and_kills_the_processes(
    target: NomadTarget, tmp_path: Path
) -> None:
    async with nomad_engine(target, tmp_path / "data") as engine:
        job_id, log = await check_timeout(engine, target)
        pids = fake_of(target).pids(job_id)
        assert len(pids) == 2, "the sidecar and the worker ran"
        # the task prints its pid and its child's once it runs (the timeout includes start-up)
        printed = re.search(rb"pids (\d+) (\d+)", log)
        pids += [int(p) for p in printed.groups()] if printed else []
        await until(_none_alive(pids), "the sidecar, the worker and its child to be gone", 10)
        deletes = [p for m, p in fake_of(target).requests if m == "DELETE"]
        assert any(p.startswith(f"/v1/job/{job_id}?") and "purge=false" in p for p in deletes)


async def test_cancel_stops_the_dispatched_job(target: NomadTarget, tmp_path: Path) -> None:
    async with nomad_engine(target, tmp_path / "data") as engine:
        job_id = await check_cancel(engine, target)
        pids = fake_of(target).pids(job_id)
        await until(_none_alive(pids), "the sidecar and the worker to be gone", 10)


async def test_blocked_evaluation_is_the_waiting_reason(
    target: NomadTarget, tmp_path: Path
) -> None:
    fake = fake_of(target)
    async with nomad_engine(target, tmp_path / "data") as engine:
        key = await engine.runtime.keys.create(WS, "test")
        fake.no_capacity = True
        run = await engine.runtime.service.create_run(WS, "wf/leaf", [41])
        headers = {"Authorization": f"Bearer {key.secret}"}
        async with httpx.AsyncClient(base_url=engine.url, headers=headers) as client:

            async def reason() -> str | None:
                body = (await client.get(f"/v1/task-runs/{run.id}")).json()
                value = body.get("waitingReason")
                return value if isinstance(value, str) else None

            shown = await until(reason, "the blocked evaluation to show", 30)
            assert shown is not None
            assert shown.startswith("waiting for capacity on the Nomad cluster")
            assert "memory" in shown
            fake.no_capacity = False
            done = await engine.runtime.service.wait_run(WS, run.id, 60)
            assert done.status is RunStatus.SUCCEEDED, done.error
            assert done.results == [42]
            after = (await client.get(f"/v1/task-runs/{run.id}")).json()
            assert "waitingReason" not in after


async def test_relay_takes_only_the_attempt_token(target: NomadTarget, tmp_path: Path) -> None:
    async with nomad_engine(target, tmp_path / "data") as engine:
        key = await engine.runtime.keys.create(WS, "test")
        await check_relay_refuses_strangers(engine, key.secret)
        url = f"{engine.url}/internal/v1/instances/att-nope"
        good = {"Authorization": f"Bearer {attempt_token(SECRET, 'att-nope')}"}
        other = {"Authorization": f"Bearer {attempt_token(SECRET, 'att-other')}"}
        envelope = {"method": "GET", "path": "/input", "query": {}, "body_b64": ""}
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.post(url, json=envelope, headers=other)).status_code == 401
            unknown = await client.post(url, json=envelope, headers=good)
            assert unknown.status_code == 503, unknown.text
            assert unknown.json()["code"] == "instance_not_attached"
            bad = await client.post(url, json={**envelope, "method": "PUT"}, headers=good)
            assert bad.status_code == 400
            assert "method" in bad.json()["message"]


async def test_control_plane_restart_reattaches_running_attempts(
    target: NomadTarget, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with nomad_engine(target, data, stop_instances=False) as first:
        port = first.port
        run = await first.runtime.service.create_run(WS, "wf/branch", ["restart"])
        pid_file = target.scratch / "pid-restart"
        await until(_exists(pid_file), "the child to start", 60)
        parent_handle = (await until(lambda: handles(first, run.id), "the parent's handle"))[0]
    # the control plane is gone; the allocations are not
    assert fake_of(target).pids(parent_handle["job_id"])
    async with nomad_engine(target, data, port=port, register=False) as second:
        (target.scratch / "release-restart").write_text("go")
        done = await second.runtime.service.wait_run(WS, run.id, 60)
        assert done.status is RunStatus.SUCCEEDED, done.error
        assert done.results == ["released restart"]
        assert len(done.attempts) == 1, "re-attached, not retried as lost"


async def test_fake_nomad_is_strict_about_dispatch(target: NomadTarget, tmp_path: Path) -> None:
    api = NomadHttpApi(engine_settings(target, tmp_path, 1).nomad)
    job = {
        "Job": {
            "ID": "strict",
            "Type": "batch",
            "ParameterizedJob": {"Payload": "required", "MetaRequired": ["mode"]},
            "TaskGroups": [
                {
                    "Name": "g",
                    "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
                    "ReschedulePolicy": {"Attempts": 0, "Unlimited": False},
                    "Tasks": [
                        {
                            "Name": "t",
                            "Driver": "docker",
                            "Config": {"image": WORKER_IMAGE, "command": "true"},
                            "Resources": {"CPU": 10, "MemoryMB": 10},
                        }
                    ],
                }
            ],
        }
    }
    try:
        await api.register_job(job)
        big = {
            "Payload": base64.b64encode(b"x" * (16 * 1024 + 1)).decode(),
            "Meta": {"mode": "run"},
        }
        with pytest.raises(NomadError, match="Payload exceeds maximum size; 16385 > 16384"):
            await api.dispatch("strict", big, idempotency_token="a")
        with pytest.raises(NomadError, match="required meta keys"):
            await api.dispatch("strict", {"Payload": "eA=="}, idempotency_token="a")
        body = {"Payload": "eA==", "Meta": {"mode": "run"}}
        first = await api.dispatch("strict", body, idempotency_token="same")
        again = await api.dispatch("strict", body, idempotency_token="same")
        assert first["DispatchedJobID"] == again["DispatchedJobID"]
        assert first["EvalID"] and again["EvalID"] == "", "a replay names no evaluation"
        assert again["EvalCreateIndex"] == 0
        # Nomad lists allocations by job id without looking the job up
        assert (await api.job_allocations("nope", index=0, wait_s=0))[0] == []
        assert await api.job_evaluations("nope") == []
        with pytest.raises(NomadNotFound):
            await api.evaluation("nope")
    finally:
        await api.close()


def _none_alive(pids: list[int]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not any(pid_alive(pid) for pid in pids)

    return check


def _exists(path: Path) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return path.exists()

    return check


async def test_a_dispatched_task_sees_its_workflow_environment_and_nothing_of_the_server(
    target: NomadTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_vars = {"GREETING": "hello from the workflow"}
    async with nomad_engine(target, tmp_path / "data", env_vars=env_vars) as engine:
        plant_control_plane_secrets(monkeypatch)
        run = await run_to_end(engine.runtime, "wf/environment", [])
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.results is not None
    assert_task_environment(run.results[0], run_id=run.id)


async def test_blocking_queries_never_hold_up_other_requests(
    target: NomadTarget, tmp_path: Path
) -> None:
    settings = engine_settings(target, tmp_path, 1, max_connections=2).nomad
    api = NomadHttpApi(settings)
    try:
        _, index = await api.job_allocations("idle", index=0, wait_s=0)
        watches = [
            asyncio.ensure_future(api.job_allocations("idle", index=index, wait_s=3))
            for _ in range(3)  # one more than the watch pool holds: it queues
        ]
        await asyncio.sleep(0.3)
        started = time.monotonic()
        assert (await api.agent_self())["config"]["Version"]["Version"] == "1.8.4"
        assert (await api.job_evaluations("idle")) == []
        assert time.monotonic() - started < 1.0, "a call waited behind the watches"
        assert not any(w.done() for w in watches)
        results = await asyncio.gather(*watches)
        assert [allocations for allocations, _ in results] == [[], [], []]
    finally:
        await api.close()
