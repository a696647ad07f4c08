"""Conveyor's TypeScript SDK (sdk/typescript): its own tests under Node's test runner, and a
workflow written with it deployed by git push with the embedded builder: typed inputs refused at
trigger time with a 400 naming the parameter, children, a failure's stack."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

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


@pytest.fixture(scope="module")
def sdk_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SDK installed, built with tsc, tested with node --test, and packed."""
    return build_conveyor_sdk(tmp_path_factory.mktemp("sdk") / "typescript")


def test_the_sdks_own_tests_pass_under_nodes_test_runner(sdk_package: Path) -> None:
    # the fixture ran `npm test` (node --test test/): here, what it left
    assert sdk_package.name == "conveyor-sdk-0.1.0.tgz" and sdk_package.stat().st_size > 0
    listed = subprocess.run(
        ["tar", "tzf", str(sdk_package)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "package/dist/workflows/index.js" in listed and "package/dist/index.d.ts" in listed
    assert not any("/src/" in name or "/test/" in name for name in listed)


@pytest.fixture
def server(tmp_path: Path, sdk_package: Path) -> Iterator[tuple[BuildServer, GitRemote]]:
    key = new_private_key_pem()
    with fake_github(APP_ID, key) as github:
        github.installations[INSTALLATION_ID] = {"octo/hello"}
        remote = make_remote(tmp_path)
        remote.commit(conveyor_ts_project(sdk_package), "a workflow on Conveyor's TypeScript SDK")
        with serve_builds(build_settings(tmp_path / "data", github.url, key)) as server:
            yield server, remote


def _run(client: httpx.Client, task: str, input: list[Any]) -> dict[str, Any]:
    created = client.post("/v1/task-runs", json={"task": task, "input": input})
    assert created.status_code == 202, created.text
    run_id = created.json()["id"]
    return wait_for(
        f"run {run_id}",
        lambda: (
            run
            if (run := client.get(f"/v1/task-runs/{run_id}").json())["status"]
            in ("succeeded", "failed", "canceled")
            else None
        ),
    )


def test_typed_inputs_are_checked_when_a_run_starts(
    server: tuple[BuildServer, GitRemote], sdk_package: Path
) -> None:
    engine, remote = server
    with engine.client() as client:
        assert client.post("/v1/workflows", json={"name": "tsc", "repo": remote.url}).is_success
        pushed = send_webhook(client, "push", push_payload(remote, "0" * 40, remote.shas[0]))
        (build_id,) = pushed.json()["builds"]
        build = wait_build(client, build_id, timeout=300)
        assert build["status"] == "succeeded", client.get(f"/v1/builds/{build_id}/logs").text
        tasks = {t["task"]["name"]: t["task"] for t in client.get("/v1/tasks").json()}
        assert tasks["add_squares"]["language"] == "typescript"
        assert tasks["add_squares"]["parameters"] == [
            {"name": "a", "hasDefault": False, "schema": {"type": "integer"}},
            {"name": "b", "hasDefault": True, "defaultValue": "0", "schema": {"type": "integer"}},
        ]

        before = client.get("/v1/task-runs").json()
        refused = client.post("/v1/task-runs", json={"task": "tsc/add_squares", "input": ["3", 4]})
        assert refused.status_code == 400
        assert refused.json()["message"] == (
            "task 'tsc/add_squares' cannot take this input: a: expected int, got '3'"
        )
        too_many = client.post("/v1/task-runs", json={"task": "tsc/square", "input": [1, 2]})
        assert too_many.status_code == 400 and "takes 1 input, got 2" in too_many.text
        assert client.get("/v1/task-runs").json() == before

        assert _run(client, "tsc/add_squares", [3, 4])["results"] == [25]
        assert _run(client, "tsc/add_squares", [5])["results"] == [25]  # b's default
        # the SDK's client against this server: run, start + events, the 400's message
        script = f"""
            const {{ Conveyor, ClientError }} = require({str(sdk_package.parent)!r});
            (async () => {{
              const conveyor = new Conveyor({{ baseUrl: {str(client.base_url)!r} }});
              const run = await conveyor.workflows.runTask("tsc/add_squares", [1, 2]);
              const started = await conveyor.workflows.startTask("tsc/square", [6]);
              const ended = [];
              for await (const r of conveyor.workflows.taskRunEvents([started.taskRunId])) {{
                ended.push(r.results);
              }}
              let refused = null;
              await conveyor.workflows.startTask("tsc/square", [true]).catch((error) => {{
                refused = error instanceof ClientError ? [error.status, error.message] : null;
              }});
              console.log(JSON.stringify([run.status, run.results, ended, refused]));
            }})();
        """
        out = subprocess.run(
            ["node", "-e", script], capture_output=True, text=True, timeout=120, check=True
        ).stdout
        assert json.loads(out) == [
            "succeeded",
            [5],
            [[36]],
            [400, "task 'tsc/square' cannot take this input: a: expected int, got True (HTTP 400)"],
        ]

        failed = _run(client, "tsc/fails", ["why not"])
        assert failed["error"] == "TypeError: failed: why not"
        assert failed["attempts"][0]["stackTrace"].startswith("TypeError: failed: why not\n    at ")
