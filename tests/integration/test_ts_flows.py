"""Flows on Conveyor's TypeScript SDK: a workflow with a TypeScript flow deployed by git push with
the embedded builder and run on the real engine (an inline step, a detached step, a durable
sleep, a step retried in place), and the SDK's view of a step's input held against the
platform's (its size, its hash)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.flows.protocol import input_hash
from tests.fakes.github import fake_github, new_private_key_pem
from tests.integration.build_fixtures import (
    APP_ID,
    INSTALLATION_ID,
    BuildServer,
    GitRemote,
    build_settings,
    make_remote,
    push_payload,
    send_webhook,
    serve_builds,
    wait_build,
    wait_for,
)
from tests.integration.node_fixtures import build_conveyor_sdk, conveyor_ts_project, requires_node

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), requires_node]

FIXTURE = Path(__file__).parent / "workflows" / "typescript-flows"
TERMINAL = ("succeeded", "failed", "canceled")


@pytest.fixture(scope="module")
def sdk_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SDK installed, built with tsc, tested with node --test, and packed."""
    return build_conveyor_sdk(tmp_path_factory.mktemp("sdk") / "typescript")


@pytest.fixture
def server(tmp_path: Path, sdk_package: Path) -> Iterator[tuple[BuildServer, GitRemote]]:
    key = new_private_key_pem()
    with fake_github(APP_ID, key) as github:
        github.installations[INSTALLATION_ID] = {"octo/hello"}
        remote = make_remote(tmp_path)
        remote.commit(conveyor_ts_project(sdk_package, FIXTURE), "a flow on the TypeScript SDK")
        with serve_builds(build_settings(tmp_path / "data", github.url, key)) as server:
            yield server, remote


def _deploy(client: httpx.Client, remote: GitRemote) -> None:
    assert client.post("/v1/workflows", json={"name": "tsf", "repo": remote.url}).is_success
    pushed = send_webhook(client, "push", push_payload(remote, "0" * 40, remote.shas[0]))
    (build_id,) = pushed.json()["builds"]
    build = wait_build(client, build_id, timeout=300)
    assert build["status"] == "succeeded", client.get(f"/v1/builds/{build_id}/logs").text


def _flow_run(client: httpx.Client, flow: str, input: list[Any]) -> dict[str, Any]:
    started = client.post("/v1/flow-runs", json={"flow": flow, "input": input})
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    assert run_id.startswith("frn-")
    return wait_for(
        f"flow run {run_id}",
        lambda: (
            run
            if (run := client.get(f"/v1/flow-runs/{run_id}").json())["status"] in TERMINAL
            else None
        ),
        timeout=120,
    )


def test_a_typescript_flow_runs_every_kind_of_step(server: tuple[BuildServer, GitRemote]) -> None:
    engine, remote = server
    with engine.client() as client:
        _deploy(client, remote)
        tasks = {t["task"]["name"]: t["task"] for t in client.get("/v1/tasks").json()}
        assert tasks["every_step"]["language"] == "typescript"
        flows = [item["flow"]["name"] for item in client.get("/v1/flows").json()]
        assert flows == ["every_step"], "a task is no flow"

        run = _flow_run(client, "tsf/every_step", [5])
        assert run["status"] == "succeeded", run
        # the sleep ended the first attempt (which reports 0); the second replayed and finished
        assert run["results"] == [{"a": 10, "b": 11, "c": 111, "attempt": 1}]
        assert [a["status"] for a in run["attempts"]] == ["paused", "succeeded"]

        steps = [item["step"] for item in client.get(f"/v1/flow-runs/{run['id']}/steps").json()]
        assert [(s["seq"], s["type"], s["name"], s["status"]) for s in steps] == [
            (1, "inline", "double", "succeeded"),
            (2, "detached", "add_one", "succeeded"),
            (3, "sleep", "sleep", "succeeded"),
            (4, "inline", "flaky", "succeeded"),
        ]
        # the attempt that completed each: the sleep was over when the second reached it
        assert [s["flowRunAttempt"] for s in steps] == [0, 0, 1, 1]
        assert "wakeAt" in steps[2]

        child = client.get(f"/v1/task-runs/{steps[1]['childTaskRunId']}").json()
        assert (child["status"], child["results"]) == ("succeeded", [11])
        assert child["parentTaskRunId"] == "trn-" + run["id"].removeprefix("frn-")

        last = client.get(f"/v1/flow-runs/{run['id']}/steps/4").json()
        assert (last["input"], last["result"]) == ([11], 111)
        assert [(a["attempt"], a["flowRunAttempt"], a["error"]) for a in last["attempts"]] == [
            (1, 1, "RangeError: flaky failure 11"),
            (2, 1, "RangeError: flaky failure 11"),
        ]


# values whose JSON differs between JavaScript and Python: floats by exponent, non-ASCII text
# (escaped by Python's default, kept by the canonical form), keys that sort otherwise by UTF-16,
# a lone surrogate (hashed by the platform as "surrogatepass" encodes it)
INPUTS: list[Any] = [
    ["o-1", {"b": 1.5, "a": "é", "n": 10**16, "x": 1e-7, "\uff21": None, "\U0001f600": [True]}],
    [1e21, 1.5e-5, 0.0001, -3.25e-10, 123456789012345680000, 0.1 + 0.2, 5e-324, 2**53 + 2],
    [{'\x7f\u2028\n\t"\\': "\x01", "z": [], "": {}}, "ünï\u00adcødé\ud800", -0.0, 1.0],
]


def test_the_sdk_measures_and_hashes_a_steps_input_as_the_platform_does(
    sdk_package: Path,
) -> None:
    # each value as Node has it, then what a step would send of it and the SDK's view of that
    module = sdk_package.parent / "dist" / "workflows" / "pythonJson.js"
    script = f"""
        const {{ inputHash, pythonJson }} = require({str(module)!r});
        const values = JSON.parse(require("fs").readFileSync(0, "utf8"));
        const views = values.map((v) => [JSON.stringify(v), pythonJson(v).length, inputHash(v)]);
        console.log(JSON.stringify(views));
    """
    out = subprocess.run(
        ["node", "-e", script],
        input=json.dumps(INPUTS),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    views = json.loads(out)
    assert len(views) == len(INPUTS)
    for sent, size, digest in views:
        value = json.loads(sent)  # as the platform parses the step's request
        assert (size, digest) == (len(json.dumps(value)), input_hash(value)), sent
