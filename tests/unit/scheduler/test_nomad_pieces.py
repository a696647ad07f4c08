"""The Nomad executor's pure parts: tokens, the relay envelope, job spec, reading allocations."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

import pytest

from core.settings import NomadSettings, Settings
from scheduler.attempt_tokens import attempt_token, token_matches
from scheduler.executors.base import InstanceStatus
from scheduler.executors.nomad import NomadExecutor
from scheduler.executors.nomad_api import NomadApi, NomadError, NomadNotFound
from scheduler.executors.nomad_jobs import (
    MAX_PAYLOAD_BYTES,
    JobShape,
    dispatch_body,
    floating_tag,
    job_spec,
)
from scheduler.executors.nomad_state import allocation_state, blocked_reason
from scheduler.executors.nomad_version import MINIMUM, agent_version, parse_version
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


def _settings(**values: Any) -> NomadSettings:
    return NomadSettings(agent_image="registry/conveyor:1.4.0", **values)


def test_job_spec_is_nomad_json() -> None:
    job = job_spec(_shape(), _settings(region="eu", cpu_mhz_per_core=1500))["Job"]
    assert job["Region"] == "eu" and job["Type"] == "batch"
    (group,) = job["TaskGroups"]
    worker = next(t for t in group["Tasks"] if t["Name"] == "worker")
    assert worker["Resources"] == {"CPU": 3000, "MemoryMB": 4096}
    assert worker["KillTimeout"] == 2_500_000_000
    assert worker["Config"]["args"][-2:] == ["conveyor-worker", "main:app"]
    assert worker["Env"]["A"] == "1"
    assert worker["Env"]["CONVEYOR_TASK_RUN_ID"] == "${NOMAD_META_run_id}"
    assert worker["Env"]["HOME"] == "/tmp", "writable, under a read-only root"
    own_home = dataclasses.replace(_shape(), env=(("HOME", "/app"),))
    (group,) = job_spec(own_home, _settings())["Job"]["TaskGroups"]
    assert next(t for t in group["Tasks"] if t["Name"] == "worker")["Env"]["HOME"] == "/app"


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
    failure = [{"Type": "Driver Failure", "DisplayMessage": "no such image"}]
    assert allocation_state(_alloc("failed", failure)).reason == "Driver Failure: no such image"


def test_a_lost_allocation_is_lost_though_its_tasks_still_read_running() -> None:
    # Nomad leaves a lost node's task states at their last report
    lost = {**_alloc("lost", [], "running"), "NodeName": "client-7"}
    state = allocation_state(lost)
    assert state.status is InstanceStatus.LOST
    assert state.reason == "Nomad lost the allocation's node client-7"
    assert allocation_state(_alloc("lost", [])).status is InstanceStatus.LOST


@pytest.mark.parametrize(
    ("event", "exit_code"),
    [
        ({"ExitCode": 137, "Signal": 0}, -9),  # docker: 128 + SIGKILL
        ({"ExitCode": 143, "Signal": 0}, -15),  # docker: 128 + SIGTERM
        ({"ExitCode": 129, "Signal": 0}, -1),
        ({"ExitCode": 192, "Signal": 0}, -64),
        ({"ExitCode": 193, "Signal": 0}, 193),
        ({"ExitCode": 128, "Signal": 0}, 128),
        ({"ExitCode": 1, "Signal": 0}, 1),
        ({"ExitCode": 0, "Signal": 0}, 0),
        ({"ExitCode": 0, "Signal": 9}, -9),  # exec, raw_exec: the signal itself
        ({"ExitCode": 137, "Signal": 9}, -9),
    ],
)
def test_exit_codes_read_signals_as_negative(event: dict[str, int], exit_code: int) -> None:
    state = allocation_state(_alloc("failed", [{"Type": "Terminated", **event}]))
    assert state.exit_code == exit_code


def test_out_of_memory_comes_from_the_terminated_events_details() -> None:
    oom = {"Type": "Terminated", "ExitCode": 137, "Details": {"oom_killed": "true"}}
    assert allocation_state(_alloc("failed", [oom])).out_of_memory
    not_oom = {"Type": "Terminated", "ExitCode": 137, "Details": {"oom_killed": "false"}}
    assert not allocation_state(_alloc("failed", [not_oom])).out_of_memory
    # no event of Nomad's is named so, and a message is not a verdict
    named = [{"Type": "OOM Killed"}, {"Type": "Terminated", "Message": "OOM Killed"}]
    assert not allocation_state(_alloc("failed", named)).out_of_memory


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


def test_the_worker_and_sidecar_run_unprivileged() -> None:
    (group,) = job_spec(_shape(), _settings())["Job"]["TaskGroups"]
    for task in group["Tasks"]:
        assert task["User"] == "10001:10001", task["Name"]
        config = task["Config"]
        assert config["cap_drop"] == ["ALL"]
        assert config["security_opt"] == ["no-new-privileges"]
        assert config["pids_limit"] == 1024
        assert config["readonly_rootfs"] is True
        assert config["mount"] == [
            {
                "type": "tmpfs",
                "target": "/tmp",
                "readonly": False,
                "tmpfs_options": [{"size": 268_435_456}],
            }
        ]
        assert "privileged" not in config and "cap_add" not in config
    hardened = job_spec(_shape(), _settings(task_user="2000:3000", pids_limit=64, tmp_size_mb=8))
    worker = next(t for t in hardened["Job"]["TaskGroups"][0]["Tasks"] if t["Name"] == "worker")
    assert worker["User"] == "2000:3000"
    assert worker["Config"]["pids_limit"] == 64
    assert worker["Config"]["mount"][0]["tmpfs_options"] == [{"size": 8_388_608}]


def test_the_images_entrypoints_are_replaced_not_prefixed() -> None:
    (group,) = job_spec(_shape(), _settings())["Job"]["TaskGroups"]
    tasks = {t["Name"]: t["Config"] for t in group["Tasks"]}
    assert "command" not in tasks["worker"] and "command" not in tasks["agent"]
    assert tasks["worker"]["entrypoint"] == ["/bin/sh"]
    assert tasks["worker"]["args"][0] == "-c"
    assert (tasks["agent"]["entrypoint"], tasks["agent"]["args"]) == (["conveyor"], ["agent"])


@pytest.mark.parametrize(
    "image",
    [None, "", "conveyor", "conveyor:latest", "registry:5000/conveyor", "reg.io/a/b:latest"],
)
def test_an_agent_image_nomad_would_pull_every_time_is_refused(image: str | None) -> None:
    settings = Settings(nomad=NomadSettings(agent_image=image, attempt_token_secret="s"))
    with pytest.raises(ValueError, match="CONVEYOR_NOMAD__AGENT_IMAGE"):
        NomadExecutor(settings, cast(NomadApi, object()))


@pytest.mark.parametrize(
    "image", ["conveyor:1.4.0", "registry:5000/conveyor:1.4", "reg.io/c@sha256:" + "a" * 64]
)
def test_a_pinned_agent_image_is_taken(image: str) -> None:
    settings = Settings(nomad=NomadSettings(agent_image=image, attempt_token_secret="s"))
    NomadExecutor(settings, cast(NomadApi, object()))
    assert floating_tag(image) is False


@pytest.mark.parametrize(
    ("info", "version"),
    [
        ({"config": {"Version": {"Version": "1.8.4", "VersionPrerelease": ""}}}, "1.8.4"),
        ({"config": {"Version": "0.12.0"}}, "0.12.0"),
        ({"config": {}, "member": {"Tags": {"build": "1.6.1+ent"}}}, "1.6.1+ent"),
        ({}, None),
    ],
)
def test_agent_version_from_agent_self(info: dict[str, Any], version: str | None) -> None:
    assert agent_version(info) == version


def test_versions_parse_by_number() -> None:
    assert parse_version("1.5.0") == (1, 5, 0)
    assert parse_version("v1.10.3-beta.1") == (1, 10, 3)
    assert parse_version("1.6.1+ent") == (1, 6, 1)
    assert parse_version("one") is None
    assert (1, 4, 9) < MINIMUM <= (1, 5, 0) < (1, 10, 0)
    assert MINIMUM == (1, 5, 0)


def test_nomad_errors_say_whether_trying_again_may_help() -> None:
    assert NomadError("no answer").transient
    assert NomadError("no leader", 500).transient
    assert NomadError("gateway", 502).transient
    assert not NomadError("refused", 403).transient
    assert not NomadError("bad", 400).transient
    assert not NomadNotFound("gone", 404).transient
