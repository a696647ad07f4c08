"""The Nomad executor on the failure paths a real cluster produces, against the fake Nomad.

A node lost under a running attempt, a job garbage-collected while no control plane watched it,
ACLs in a non-default namespace, a dispatch whose answer never arrived (replayed with its
idempotency token), and an agent too old to support.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from core.domain import AttemptOutcome, RunStatus
from core.settings import Settings
from scheduler.executors.base import AttemptSpec, Mode
from scheduler.executors.nomad import NomadExecutor
from scheduler.executors.nomad_api import NomadHttpApi
from scheduler.executors.nomad_version import UnsupportedNomad
from tests.fakes.nomad import FakeNomad
from tests.integration.nomad_checks import allocations_dead, handles
from tests.integration.nomad_fixtures import (
    WS,
    NomadEngine,
    NomadTarget,
    engine_settings,
    fake_target,
    nomad_engine,
    run_to_end,
    until,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

NAMESPACE = "conveyor"
ACL_TOKEN = "acl-token-for-tests"
BLOCKING_WAIT_S = 5.0  # engine_settings' blocking_wait_seconds


@pytest.fixture
def target(tmp_path: Path) -> Iterator[NomadTarget]:
    with fake_target(tmp_path) as found:
        yield found


def fake_of(target: NomadTarget) -> FakeNomad:
    assert target.fake is not None
    return target.fake


def _exists(path: Path) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return path.exists()

    return check


def _first_outcome(engine: NomadEngine, run_id: str) -> Callable[[], Awaitable[object]]:
    async def check() -> object:
        info = await engine.runtime.service.get_run(WS, run_id)
        return info.attempts[0].outcome if info.attempts else None

    return check


async def test_a_lost_node_is_a_lost_attempt_retried_within_one_blocking_query(
    target: NomadTarget, tmp_path: Path
) -> None:
    fake = fake_of(target)
    pid_file = target.scratch / "pid-lost"
    async with nomad_engine(target, tmp_path / "data") as engine:
        run = await engine.runtime.service.create_run(WS, "wf/hold", ["lost"])
        await until(_exists(pid_file), "the attempt to run", 60)
        pid_file.unlink()
        lost_at = time.monotonic()
        fake.lose_node()
        (handle,) = await until(lambda: handles(engine, run.id), "the attempt's handle")
        stubs = (await _get(target, f"/v1/job/{handle['job_id']}/allocations")).json()
        assert [s["ClientStatus"] for s in stubs] == ["lost"]
        assert stubs[0]["TaskStates"]["worker"]["State"] == "running", "as the node last said"
        lost_alloc = stubs[0]["ID"]

        outcome = await until(_first_outcome(engine, run.id), "the attempt to end", 30)
        assert outcome is AttemptOutcome.LOST
        assert time.monotonic() - lost_at < BLOCKING_WAIT_S, "within one blocking query"
        await until(_exists(pid_file), "the retry to run", 60)
        (target.scratch / "release-lost").write_text("go")
        done = await engine.runtime.service.wait_run(WS, run.id, 60)
        first_log = (await engine.runtime.service.read_log(WS, run.id, 0)).data
    assert b"the worker's logs went with it" in first_log
    assert done.status is RunStatus.SUCCEEDED, done.error
    assert done.results == ["released lost"]
    assert [a.outcome for a in done.attempts] == [AttemptOutcome.LOST, AttemptOutcome.OK]
    assert "lost the allocation's node fake-node-1" in (done.attempts[0].error or "")
    # the first attempt's log says where its output went, without asking the lost node for it
    assert not [p for _, p in fake.requests if p.startswith(f"/v1/client/fs/logs/{lost_alloc}")]


async def test_an_oom_killed_worker_is_out_of_memory_with_signal_9(
    target: NomadTarget, tmp_path: Path
) -> None:
    async with nomad_engine(target, tmp_path / "data") as engine:
        run = await engine.runtime.service.create_run(WS, "wf/hold", ["oom"])
        await until(_exists(target.scratch / "pid-oom"), "the attempt to run", 60)
        (handle,) = await until(lambda: handles(engine, run.id), "the attempt's handle")
        fake_of(target).oom_kill(handle["job_id"])
        done = await engine.runtime.service.wait_run(WS, run.id, 60)
        stubs = (await _get(target, f"/v1/job/{handle['job_id']}/allocations")).json()
    (terminated,) = [
        e for e in stubs[0]["TaskStates"]["worker"]["Events"] if e["Type"] == "Terminated"
    ]
    assert (terminated["ExitCode"], terminated["Signal"]) == (137, 0), "as Docker reports it"
    assert terminated["Details"]["oom_killed"] == "true"
    assert done.status is RunStatus.FAILED
    (attempt,) = done.attempts
    assert attempt.outcome is AttemptOutcome.OUT_OF_MEMORY
    assert attempt.exit_code == -9


async def test_a_collected_job_is_decided_lost_and_reconcile_goes_on(
    target: NomadTarget, tmp_path: Path
) -> None:
    fake = fake_of(target)
    data = tmp_path / "data"
    async with nomad_engine(target, data, stop_instances=False) as first:
        port = first.port
        collected = await first.runtime.service.create_run(WS, "wf/hold", ["gc"])
        kept = await first.runtime.service.create_run(WS, "wf/hold", ["kept"])
        for name in ("gc", "kept"):
            await until(_exists(target.scratch / f"pid-{name}"), f"{name} to run", 60)
        # the handle is a deferred write: the task may run before it is stored
        (gone,) = await until(lambda: handles(first, collected.id), "the attempt's handle")
    # no control plane watches; the job is stopped and collected meanwhile
    async with httpx.AsyncClient(base_url=target.address, timeout=10) as client:
        (await client.delete(f"/v1/job/{gone['job_id']}")).raise_for_status()
    await until(lambda: allocations_dead(target, gone["job_id"]), "the stopped tasks to die")
    fake.gc()
    assert (await _get(target, f"/v1/job/{gone['job_id']}/allocations")).json() == []
    assert (await _get(target, f"/v1/evaluation/{gone['eval_id']}")).status_code == 404
    (target.scratch / "pid-gc").unlink()

    async with nomad_engine(target, data, port=port, register=False) as second:
        await until(_exists(target.scratch / "pid-gc"), "the collected run's retry to run", 60)
        for name in ("gc", "kept"):
            (target.scratch / f"release-{name}").write_text("go")
        retried = await second.runtime.service.wait_run(WS, collected.id, 60)
        watched = await second.runtime.service.wait_run(WS, kept.id, 60)
    assert retried.status is RunStatus.SUCCEEDED, retried.error
    assert [a.outcome for a in retried.attempts] == [AttemptOutcome.LOST, AttemptOutcome.OK]
    assert "garbage-collected" in (retried.attempts[0].error or "")
    assert watched.status is RunStatus.SUCCEEDED, watched.error
    assert len(watched.attempts) == 1, "the running attempt after it was watched again"


async def test_acls_in_a_namespace_every_call_names_it(tmp_path: Path) -> None:
    with fake_target(tmp_path, namespace=NAMESPACE, acl_token=ACL_TOKEN) as target:
        fake = fake_of(target)
        async with httpx.AsyncClient(base_url=target.address, timeout=10) as client:
            refused = await client.get("/v1/job/x/allocations", headers={"X-Nomad-Token": "no"})
            assert refused.status_code == 403
            refused = await client.get("/v1/evaluation/x", headers={"X-Nomad-Token": ACL_TOKEN})
            assert (refused.status_code, refused.text) == (403, "Permission denied")
        fake.answers.clear()
        settings = {"namespace": NAMESPACE, "token": ACL_TOKEN}
        async with nomad_engine(target, tmp_path / "data", nomad=settings) as engine:
            # blocked first, so the attempt's evaluations are read too
            fake.no_capacity = True
            run = await engine.runtime.service.create_run(WS, "wf/leaf", [1])
            await until(_waiting(engine, run.id), "the blocked evaluation to show", 30)
            fake.no_capacity = False
            done = await engine.runtime.service.wait_run(WS, run.id, 60)
        assert done.status is RunStatus.SUCCEEDED, done.error
    assert [a for a in fake.answers if a[2] >= 400] == []
    namespaced = [p for _, p, _ in fake.answers if not p.startswith("/v1/agent/")]
    assert any(p.startswith("/v1/evaluation/") for p in namespaced)
    assert all(f"namespace={NAMESPACE}" in p for p in namespaced), namespaced


async def test_a_replayed_dispatch_follows_the_job_dispatched_first(
    target: NomadTarget, tmp_path: Path
) -> None:
    fake = fake_of(target)
    # the client gives up on an answer after 1 s; the fake holds the first one for 2.5 s
    settings = {"request_timeout_seconds": 1.0}
    async with nomad_engine(target, tmp_path / "data", nomad=settings) as engine:
        fake.no_capacity = True  # nothing placed yet: the state comes from the evaluations
        fake.stall_dispatch(2.5)
        before = set(fake.dispatched_jobs())
        run = await engine.runtime.service.create_run(WS, "wf/leaf", [41])
        await until(_waiting(engine, run.id), "the blocked evaluation to show", 30)
        (handle,) = await until(lambda: handles(engine, run.id), "the attempt's handle")
        assert handle["eval_id"] == "", "the replay's answer named no evaluation"
        fake.no_capacity = False
        done = await engine.runtime.service.wait_run(WS, run.id, 60)
    assert done.status is RunStatus.SUCCEEDED, done.error
    assert done.results == [42]
    assert len(done.attempts) == 1
    dispatches = [p for m, p in fake.requests if m == "POST" and p.endswith(_token(handle))]
    assert len(dispatches) == 2, "the unanswered dispatch was sent again with its token"
    assert set(fake.dispatched_jobs()) - before == {handle["job_id"]}, "one job, one body"
    assert len(fake.pids(handle["job_id"])) == 2, "one allocation: the sidecar and the worker"


async def test_an_agent_older_than_1_5_is_refused_at_start(tmp_path: Path) -> None:
    with fake_target(tmp_path, version="1.4.7") as target:
        settings = engine_settings(target, tmp_path / "data", 1)
        executor = NomadExecutor(settings, NomadHttpApi(settings.nomad))
        try:
            with pytest.raises(UnsupportedNomad, match=r"Nomad 1\.4\.7 is not supported"):
                await executor.check()
        finally:
            await executor.close()


async def test_a_supported_agent_or_one_the_token_may_not_ask_is_accepted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for version, options in (("1.5.0", {}), ("1.10.2", {"acl_token": ACL_TOKEN})):
        (tmp_path / version).mkdir()
        with fake_target(tmp_path / version, version=version, **options) as target:
            await _checked(engine_settings(target, tmp_path / "data", 1, token=ACL_TOKEN))
    (tmp_path / "no-read").mkdir()
    with fake_target(
        tmp_path / "no-read", version="1.0.0", acl_token=ACL_TOKEN, agent_read=False
    ) as target:
        await _checked(engine_settings(target, tmp_path / "data", 1, token=ACL_TOKEN))
    assert "cannot read the Nomad agent's version" in caplog.text


async def test_a_nomad_that_does_not_answer_yet_is_checked_before_the_next_dispatch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with fake_target(tmp_path, version="1.4.7") as target:
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        try:
            gone = f"http://127.0.0.1:{closed.getsockname()[1]}"
            settings = engine_settings(target, tmp_path / "data", 1, address=gone)
            await _checked(settings)  # no answer: no verdict
        finally:
            closed.close()
        assert "Nomad did not answer" in caplog.text
        settings = engine_settings(target, tmp_path / "data", 1)
        executor = NomadExecutor(settings, NomadHttpApi(settings.nomad))
        try:
            with pytest.raises(UnsupportedNomad):
                await executor.start(_spec(settings, tmp_path, "att-old"))
            assert fake_of(target).registered_jobs() == {}, "nothing registered on it"
        finally:
            await executor.close()


async def _checked(settings: Settings) -> None:
    executor = NomadExecutor(settings, NomadHttpApi(settings.nomad))
    try:
        await executor.check()
    finally:
        await executor.close()


def _waiting(engine: NomadEngine, run_id: str) -> Callable[[], Awaitable[bool]]:
    """Whether the run's attempt shows why it is not placed."""

    async def check() -> bool:
        info = await engine.runtime.service.get_run(WS, run_id)
        reason = info.attempts[-1].waiting_reason if info.attempts else None
        return bool(reason and reason.startswith("waiting for capacity on the Nomad cluster"))

    return check


def _token(handle: dict[str, object]) -> str:
    return f"idempotency_token={handle['attempt_id']}"


async def _get(target: NomadTarget, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=target.address, timeout=10) as client:
        return await client.get(path)


async def test_a_new_version_retires_the_jobs_of_the_one_it_replaces(
    target: NomadTarget, tmp_path: Path
) -> None:
    fake = fake_of(target)
    async with nomad_engine(target, tmp_path / "data") as engine:
        (first,) = fake.registered_jobs()
        second = await engine.runtime.register_workflow(
            target.workflow,
            slug="wf",
            start_command="conveyor-worker main:app",
            env_vars={"GREETING": "second"},
        )
        parents = fake.registered_jobs()
        assert parents[first]["Stop"] is True, "the replaced version's job is stopped"
        running = [job_id for job_id, job in parents.items() if not job["Stop"]]
        assert len(running) == 1 and second.id in running[0]
        done = await run_to_end(engine.runtime, "wf/leaf", [1])
        assert done.status is RunStatus.SUCCEEDED, done.error


async def test_an_attempt_of_a_retired_version_registers_its_job_again(
    target: NomadTarget, tmp_path: Path
) -> None:
    fake = fake_of(target)
    settings = engine_settings(target, tmp_path / "data", 1)
    watching = NomadExecutor(settings, NomadHttpApi(settings.nomad))
    other = NomadExecutor(settings, NomadHttpApi(settings.nomad))  # another scheduler
    try:
        first = await watching.start(_spec(settings, tmp_path, "att-a"))
        await other.retire("wfv-old")
        (parent,) = fake.registered_jobs()
        assert fake.registered_jobs()[parent]["Stop"] is True
        # `watching` still takes the job for registered: Nomad refuses, it registers it again
        second = await watching.start(_spec(settings, tmp_path, "att-b"))
        assert fake.registered_jobs()[parent]["Stop"] is False
        assert fake.job_versions(parent) == 1
        assert first["job_id"] != second["job_id"]
        for handle in (first, second):
            await watching.stop(handle, 1.0)
    finally:
        await watching.close()
        await other.close()


def _spec(settings: Settings, tmp_path: Path, attempt_id: str) -> AttemptSpec:
    return AttemptSpec(
        attempt_id=attempt_id,
        run_id="run-1",
        attempt=0,
        mode=Mode.RUN,
        start_command="conveyor-worker main:app",
        cwd=tmp_path,
        socket_path=tmp_path / f"{attempt_id}.sock",
        log_path=tmp_path / f"{attempt_id}.log",
        plan=settings.plan(None),
        version_id="wfv-old",
    )
