"""The Nomad executor's pure parts: tokens, the relay envelope, job spec, reading allocations."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from core.settings import NomadSettings, Settings
from scheduler.attempt_tokens import attempt_token, token_matches
from scheduler.executors.base import InstanceStatus
from scheduler.executors.nomad_jobs import MAX_PAYLOAD_BYTES, JobShape, dispatch_body, job_spec
from scheduler.executors.nomad_state import allocation_state, blocked_reason
from scheduler.relay_wire import BadEnvelope, decode_request, decode_response, encode_request
from scheduler.uds_http import Request


def test_attempt_tokens_are_per_attempt_and_need_a_secret() -> None:
    token = attempt_token("s", "att-1")
    assert token_matches("s", "att-1", token)
    assert not token_matches("s", "att-2", token)
    assert not token_matches("other", "att-1", token)
    assert not token_matches("", "att-1", token)
    with pytest.raises(ValueError, match="ATTEMPT_TOKEN_SECRET"):
        attempt_token("", "att-1")


def test_envelope_round_trip_and_strictness() -> None:
    request = Request("POST", "/callback", {"a": ["1"]}, b'{"complete": {}}')
    assert decode_request(json.loads(json.dumps(encode_request(request)))) == request
    good = encode_request(request)
    bad: Any
    for bad in (
        {**good, "method": "PUT"},
        {**good, "path": "callback"},
        {**good, "query": {"a": "1"}},
        {**good, "body_b64": "***"},
        {**good, "extra": 1},
        [],
    ):
        with pytest.raises(BadEnvelope):
            decode_request(bad)
    with pytest.raises(BadEnvelope):
        decode_response({"status": True, "body_b64": ""})
    assert decode_response({"status": 409, "body_b64": "e30="}).body == b"{}"


def _shape() -> JobShape:
    return JobShape(
        job_id="conveyor-wfv-1-pro",
        version_id="wfv-1",
        image="img:1",
        start_command="conveyor-worker 'main:app'",
        plan=Settings().plan("pro"),
        env=(("A", "1"),),
        kill_grace_seconds=2.5,
    )


def test_job_spec_is_nomad_json() -> None:
    job = job_spec(_shape(), NomadSettings(region="eu", cpu_mhz_per_core=1500))["Job"]
    assert job["Region"] == "eu" and job["Type"] == "batch"
    (group,) = job["TaskGroups"]
    worker = next(t for t in group["Tasks"] if t["Name"] == "worker")
    assert worker["Resources"] == {"CPU": 3000, "MemoryMB": 4096}
    assert worker["KillTimeout"] == 2_500_000_000
    assert worker["Config"]["args"][-2:] == ["conveyor-worker", "main:app"]
    assert worker["Env"]["A"] == "1"
    assert worker["Env"]["CONVEYOR_TASK_RUN_ID"] == "${NOMAD_META_run_id}"


def test_dispatch_body_carries_the_token_in_the_payload() -> None:
    body = dispatch_body(
        attempt_id="att-1", run_id="", attempt=2, mode="run", token="t", control_plane_url="u"
    )
    assert json.loads(base64.b64decode(body["Payload"])) == {
        "attempt_id": "att-1",
        "token": "t",
        "control_plane_url": "u",
    }
    assert body["Meta"] == {"attempt_id": "att-1", "run_id": "-", "attempt": "2", "mode": "run"}
    with pytest.raises(ValueError, match=str(MAX_PAYLOAD_BYTES)):
        dispatch_body(
            attempt_id="a",
            run_id="r",
            attempt=0,
            mode="run",
            token="t" * MAX_PAYLOAD_BYTES,
            control_plane_url="u",
        )


def _alloc(
    client: str, events: Sequence[Mapping[str, object]], state: str = "dead"
) -> dict[str, Any]:
    return {
        "ClientStatus": client,
        "TaskStates": {"worker": {"State": state, "Events": events}, "agent": {"State": state}},
    }


def test_allocation_states() -> None:
    assert allocation_state(_alloc("running", [], "running")).status is InstanceStatus.ALIVE
    done = allocation_state(_alloc("failed", [{"Type": "Terminated", "ExitCode": 3}]))
    assert (done.status, done.exit_code, done.out_of_memory) == (InstanceStatus.EXITED, 3, False)
    killed = allocation_state(_alloc("complete", [{"Type": "Terminated", "Signal": 9}]))
    assert killed.exit_code == -9
    oom = [{"Type": "Terminated", "ExitCode": 137, "Details": {"oom_killed": "true"}}]
    assert allocation_state(_alloc("failed", oom)).out_of_memory
    assert allocation_state(_alloc("failed", [{"Type": "OOM Killed"}])).out_of_memory
    assert allocation_state(_alloc("lost", [])).status is InstanceStatus.UNKNOWN
    failure = [{"Type": "Driver Failure", "DisplayMessage": "no such image"}]
    assert allocation_state(_alloc("failed", failure)).reason == "Driver Failure: no such image"


def test_blocked_reason_names_the_exhausted_dimensions() -> None:
    assert blocked_reason({"Status": "complete"}) is None
    evaluation = {
        "Status": "complete",
        "BlockedEval": "e2",
        "FailedTGAllocs": {
            "attempt": {"NodesEvaluated": 3, "NodesExhausted": 3, "DimensionExhausted": {"cpu": 3}}
        },
    }
    assert blocked_reason(evaluation) == (
        "waiting for capacity on the Nomad cluster: 3 of 3 nodes exhausted, short of cpu (3)"
    )
