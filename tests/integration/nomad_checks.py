"""What the Nomad executor must do, checked the same way against the fake and a real Nomad."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
from sqlalchemy import select

from core.db.models import Attempt
from core.domain import AttemptOutcome, AttemptState, RunStatus
from core.settings import NomadSettings
from scheduler.executors.nomad_api import tls_verify
from scheduler.executors.nomad_jobs import job_id_for
from tests.integration.nomad_fixtures import (
    WS,
    NomadEngine,
    NomadTarget,
    run_to_end,
    until,
)


async def nomad_get(target: NomadTarget, path: str) -> Any:
    """A read of Nomad's API as the executor's client makes it (token, TLS from NOMAD_*)."""
    token = os.environ.get("NOMAD_TOKEN")
    headers = {"X-Nomad-Token": token} if token else {}
    async with httpx.AsyncClient(
        timeout=10, headers=headers, verify=tls_verify(NomadSettings())
    ) as client:
        response = await client.get(f"{target.address}{path}")
    response.raise_for_status()
    return response.json()


async def handles(engine: NomadEngine, run_id: str) -> list[dict[str, Any]]:
    """The executor handles of a run's attempts, oldest first."""
    async with engine.runtime.store.sessions() as session:
        rows = await session.scalars(
            select(Attempt.handle).where(Attempt.run_id == run_id).order_by(Attempt.number)
        )
        return [json.loads(handle) for handle in rows if handle]


async def allocations_dead(target: NomadTarget, job_id: str) -> bool:
    allocations = await nomad_get(target, f"/v1/job/{job_id}/allocations")
    return all(
        a["ClientStatus"] in ("complete", "failed", "lost")
        and all(t["State"] == "dead" for t in (a.get("TaskStates") or {}).values())
        for a in allocations
    )


async def check_submit(engine: NomadEngine, target: NomadTarget) -> None:
    run = await run_to_end(engine.runtime, "wf/middle", [4])
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.results == [50]
    (handle,) = await handles(engine, run.id)
    job = await nomad_get(target, f"/v1/job/{handle['job_id']}")
    assert job["ParentID"] == job_id_for("conveyor", run.version_id, "standard")
    assert job["Meta"]["run_id"] == run.id
    assert job["Meta"]["attempt"] == "0"
    assert job["Meta"]["mode"] == "run"
    group = job["TaskGroups"][0]
    assert group["RestartPolicy"]["Attempts"] == 0
    assert group["RestartPolicy"]["Mode"] == "fail"
    assert group["ReschedulePolicy"]["Attempts"] == 0
    assert group["ReschedulePolicy"]["Unlimited"] is False


async def check_retries_and_logs(engine: NomadEngine, target: NomadTarget) -> None:
    run = await run_to_end(engine.runtime, "wf/flaky", [2])
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.results == ["ok after 2 failures"]
    assert [a.outcome for a in run.attempts] == [
        AttemptOutcome.ERROR,
        AttemptOutcome.ERROR,
        AttemptOutcome.OK,
    ]
    jobs = [h["job_id"] for h in await handles(engine, run.id)]
    assert len(set(jobs)) == 3, "each attempt is its own dispatch"
    log = await engine.runtime.service.read_log(WS, run.id, 0)
    assert b"RuntimeError: failure 1 of 2" in log.data
    assert "failure 1 of 2" in (run.attempts[0].stack_trace or "")


async def check_timeout(engine: NomadEngine, target: NomadTarget) -> tuple[str, bytes]:
    """A run killed at its timeout: (its dispatched job, stopped; the attempt's log)."""
    run = await run_to_end(engine.runtime, "wf/sleeps_with_child", ["t"], timeout=60)
    assert run.status is RunStatus.FAILED
    assert run.attempts[-1].outcome is AttemptOutcome.TIMEOUT
    (handle,) = await handles(engine, run.id)
    job = await nomad_get(target, f"/v1/job/{handle['job_id']}")
    assert job["Stop"] is True, "stopping an attempt deregisters its dispatched job"
    await until(lambda: allocations_dead(target, handle["job_id"]), "tasks to die")
    log = await engine.runtime.service.read_log(WS, run.id, 0)
    return str(handle["job_id"]), log.data


async def check_cancel(engine: NomadEngine, target: NomadTarget) -> str:
    """A running attempt cancelled; returns its dispatched job, stopped."""
    run = await engine.runtime.service.create_run(WS, "wf/sleeps", [120])

    async def running() -> bool:
        info = await engine.runtime.service.get_run(WS, run.id)
        return bool(info.attempts) and info.attempts[-1].state is AttemptState.RUNNING

    await until(running, "the task to ask for its input", 60)
    await engine.runtime.service.cancel_run(WS, run.id)
    done = await engine.runtime.service.wait_run(WS, run.id, 30)
    assert done.status is RunStatus.CANCELED
    (handle,) = await handles(engine, run.id)
    await until(lambda: allocations_dead(target, handle["job_id"]), "tasks to die")
    assert (await nomad_get(target, f"/v1/job/{handle['job_id']}"))["Stop"] is True
    return str(handle["job_id"])


async def check_relay_refuses_strangers(engine: NomadEngine, api_key: str) -> None:
    run = await engine.runtime.service.create_run(WS, "wf/leaf", [1])
    done = await engine.runtime.service.wait_run(WS, run.id, 60)
    assert done.status is RunStatus.SUCCEEDED
    url = f"{engine.url}/internal/v1/instances/att-unknown"
    body = {"method": "GET", "path": "/input", "query": {}, "body_b64": ""}
    async with httpx.AsyncClient(timeout=10) as client:
        anonymous = await client.post(url, json=body)
        with_key = await client.post(url, json=body, headers={"Authorization": f"Bearer {api_key}"})
    for response in (anonymous, with_key):
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "unauthorized"
