"""A TypeScript repository on Render's official SDK, deployed by git push with the embedded
builder: no Dockerfile, no build command, no start command (its package.json's scripts decide)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
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
from tests.integration.node_fixtures import render_ts_project, requires_render_ts_sdk

pytestmark = [pytest.mark.slow, requires_render_ts_sdk]

FINISHED = ("succeeded", "failed", "canceled")


@pytest.fixture
def server(tmp_path: Path, scratch: Path) -> Iterator[tuple[BuildServer, GitRemote]]:
    """The server, with the scratch folder mounted into every task (`scratch` sets it)."""
    key = new_private_key_pem()
    with fake_github(APP_ID, key) as github:
        github.installations[INSTALLATION_ID] = {"octo/hello"}
        remote = make_remote(tmp_path)
        remote.commit(render_ts_project(), "a TypeScript workflow")
        with serve_builds(build_settings(tmp_path / "data", github.url, key)) as server:
            yield server, remote


def _push(client: httpx.Client, remote: GitRemote, before: str) -> dict[str, Any]:
    response = send_webhook(client, "push", push_payload(remote, before, remote.shas[-1]))
    assert response.status_code == 200, response.text
    (build_id,) = response.json()["builds"]
    build = wait_build(client, build_id, timeout=300)
    assert build["status"] == "succeeded", client.get(f"/v1/builds/{build_id}/logs").text
    return build


def _run(client: httpx.Client, task: str, input: Any) -> dict[str, Any]:
    created = client.post("/v1/task-runs", json={"task": task, "input": input})
    assert created.status_code == 202, created.text
    run_id = created.json()["id"]
    return wait_for(
        f"run {run_id}",
        lambda: (
            run
            if (run := client.get(f"/v1/task-runs/{run_id}").json())["status"] in FINISHED
            else None
        ),
    )


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def test_a_node_repository_deploys_by_push_and_runs(
    server: tuple[BuildServer, GitRemote], scratch: Path
) -> None:
    engine, remote = server
    with engine.client() as client:
        created = client.post("/v1/workflows", json={"name": "hello", "repo": remote.url})
        assert created.status_code == 201, created.text
        build = _push(client, remote, "0" * 40)
        log = client.get(f"/v1/builds/{build['id']}/logs").text
        assert "installing node_modules" in log and "npm ci" in log
        assert "running the build script: tsc -p tsconfig.json" in log
        assert 'start command: node dist/main.js (the "start" script of package.json)' in log
        version = client.get(f"/v1/workflowversions/{build['workflowVersionId']}").json()
        tasks = {t["task"]["name"]: t["task"] for t in client.get("/v1/tasks").json()}
        assert set(tasks) == {"square", "sum_squares", "fails", "flaky"}, version
        assert {t["language"] for t in tasks.values()} == {"typescript"}
        # a retry without backoffScaling: Render's documented default factor
        assert tasks["flaky"]["options"]["retry"] == {
            "maxRetries": 3,
            "waitDurationMs": 1000,
            "factor": 1.5,
        }

        assert _run(client, "hello/sum_squares", [3, 4])["results"] == [25]

        # An object cannot be spread into a TypeScript function's arguments: 400, nothing stored
        before = client.get("/v1/task-runs", params={"limit": 100}).json()
        refused = client.post("/v1/task-runs", json={"task": "hello/square", "input": {"a": 3}})
        assert refused.status_code == 400
        assert "takes its arguments by position" in refused.json()["message"]
        assert client.get("/v1/task-runs", params={"limit": 100}).json() == before

        failed = _run(client, "hello/fails", ["x"])
        assert failed["status"] == "failed" and failed["error"] == "boom: x"
        stack = failed["attempts"][0]["stackTrace"]
        assert stack.startswith("Error: boom: x\n    at ")
        assert "dist/main.js" in stack and "Failed to start task server" not in stack
        attempt_log = client.get("/v1/logs", params={"taskRun": failed["id"]}).text
        assert "Failed to start task server" in attempt_log
        assert "is how Render's TypeScript SDK reports an error thrown by the task" in attempt_log
        page = client.get(f"/runs/{failed['id']}")
        assert page.status_code == 200 and "Error: boom: x" in page.text
        assert "dist/main.js" in page.text

        flaky = _run(client, "hello/flaky", [str(scratch / "marker"), 4])
        assert flaky["status"] == "succeeded" and flaky["results"] == [3]
        attempts = flaky["attempts"]
        gaps = [
            _seconds(attempts[i]["completedAt"], attempts[i + 1]["startedAt"]) for i in range(3)
        ]
        # 1 s, then 1.5 s, then 2.25 s; a factor of 2 would wait 4 s before the last one
        assert gaps[0] >= 1.0 and gaps[1] >= 1.5 and gaps[2] >= 2.25, gaps
        assert gaps[2] < 4.0, gaps

        # a commit that keeps the lockfile installs nothing
        remote.commit({"src/extra.ts": "export const answer = 42;\n"}, "more code")
        second = _push(client, remote, remote.shas[0])
        log2 = client.get(f"/v1/builds/{second['id']}/logs").text
        assert "reusing node_modules" in log2 and "npm ci" not in log2, log2
        assert _run(client, "hello/square", [9])["results"] == [81]
