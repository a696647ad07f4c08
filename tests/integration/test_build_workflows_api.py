"""Workflow resources over HTTP: create, read, change, delete, deploy; bad input is a clear 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.cli.main import main
from core.db.models import Build, WorkflowVersion
from scheduler.runtime import Runtime
from tests.integration.build_fixtures import (
    GitRemote,
    build_settings,
    make_remote,
    serve_builds,
    wait_build,
)

WORKFLOW = """
from conveyor import Workflows

app = Workflows()


@app.task
def t() -> int:
    return 1
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    settings = build_settings(tmp_path / "data", "http://127.0.0.1:9", "unused")
    settings = settings.model_copy(
        update={"github": settings.github.model_copy(update={"app_id": None})}
    )
    with serve_builds(settings) as server, server.client() as client:
        yield client


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    remote = make_remote(tmp_path)
    remote.commit({"main.py": WORKFLOW}, "init")
    return remote


def test_crud_and_env_vars_never_returned(client: httpx.Client, remote: GitRemote) -> None:
    created = client.post(
        "/v1/workflows",
        json={
            "name": "My ETL",
            "repo": remote.url,
            "envVars": [{"key": "DB", "value": "secret-db-password"}],
        },
    )
    assert created.status_code == 201, created.text
    workflow = created.json()
    assert workflow["slug"] == "my-etl" and workflow["branch"] == "main"
    assert workflow["buildConfig"]["repo"] == remote.url and workflow["envVarKeys"] == ["DB"]

    duplicate = client.post("/v1/workflows", json={"name": "My ETL", "repo": remote.url})
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "conflict"

    patched = client.patch(
        f"/v1/workflows/{workflow['id']}",
        json={"buildCommand": "make", "envVars": {"DB": None, "TOKEN": "secret-token-value"}},
    )
    assert patched.status_code == 200
    assert patched.json()["buildConfig"]["buildCommand"] == "make"
    assert patched.json()["envVarKeys"] == ["TOKEN"]
    by_slug = client.get("/v1/workflows/my-etl").json()
    assert by_slug["id"] == workflow["id"]
    assert "secret-db-password" not in str(by_slug) and "secret-token-value" not in str(by_slug)

    assert client.delete(f"/v1/workflows/{workflow['id']}").status_code == 204
    missing = client.get(f"/v1/workflows/{workflow['id']}")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"repo": "https://github.com/octo/hello"}, "name is required"),
        ({"name": "x"}, "repo is required"),
        ({"name": "x", "repo": "https://github.com/octo/hello", "color": "red"}, "unknown fields"),
        ({"name": "x", "repo": "https://github.com/octo/hello", "branch": 3}, "branch must be"),
        ({"name": "x", "repo": "https://github.com/octo/hello", "envVars": "A=1"}, "envVars"),
        ({"name": "x", "repo": "ftp://example.com/a/b"}, "not a git URL"),
        (
            {
                "name": "x",
                "repo": "https://github.com/o/h",
                "envVars": {"CONVEYOR_TASK_RUN_ID": "1"},
            },
            "envVars: 'CONVEYOR_TASK_RUN_ID' is reserved",
        ),
        (
            {"name": "x", "repo": "https://github.com/o/h", "envVars": {"A-B": "1"}},
            "envVars: 'A-B' is not a variable name",
        ),
    ],
)
def test_bad_bodies_are_400(client: httpx.Client, body: dict[str, object], fragment: str) -> None:
    response = client.post("/v1/workflows", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request" and fragment in response.json()["message"]


@pytest.mark.slow
def test_deploy_builds_the_branch_head_and_a_bad_commit_is_refused(
    client: httpx.Client, remote: GitRemote
) -> None:
    workflow = client.post("/v1/workflows", json={"name": "dep", "repo": remote.url}).json()
    bad = client.post(f"/v1/workflows/{workflow['id']}/deploy", json={"commitId": "abc"})
    assert bad.status_code == 400 and "40-character" in bad.json()["message"]
    started = client.post(f"/v1/workflows/{workflow['id']}/deploy", json={})
    assert started.status_code == 202 and started.json()["commitId"] == remote.shas[0]
    build = wait_build(client, started.json()["id"])
    assert build["status"] == "succeeded", client.get(f"/v1/builds/{build['id']}/logs").text
    listed = client.get("/v1/builds", params={"workflowId": workflow["id"]}).json()
    assert [item["build"]["id"] for item in listed] == [build["id"]]
    # the dashboard shows the build, its commit and its log
    page = client.get("/workflows")
    assert page.status_code == 200
    assert build["id"] in page.text and remote.shas[0][:12] in page.text
    detail = client.get(f"/builds/{build['id']}")
    assert detail.status_code == 200
    assert "succeeded" in detail.text and "==&gt; [" in detail.text
    assert 'http-equiv="refresh"' not in detail.text
    assert client.get("/builds/bld-nope").status_code == 404
    wrong_branch = client.patch(f"/v1/workflows/{workflow['id']}", json={"branch": "nope"})
    assert wrong_branch.status_code == 200
    refused = client.post(f"/v1/workflows/{workflow['id']}/deploy", json={})
    assert refused.status_code == 409 and "nope" in refused.json()["message"]
    # A workflow with runs keeps its history: it cannot be deleted.
    run = client.post("/v1/task-runs", json={"task": "dep/t", "input": []})
    assert run.status_code == 202
    assert client.delete(f"/v1/workflows/{workflow['id']}").status_code == 409


async def _as_if_a_process_died_building(runtime: Runtime, build_id: str) -> None:
    """The state a control plane leaves when it dies mid-build, two days ago."""
    async with runtime.store.sessions.begin() as session:
        build = await session.get_one(Build, build_id)
        build.status, build.finished_at = "running", None
        build.created_at = datetime.now(UTC) - timedelta(days=2)
        version = await session.get_one(WorkflowVersion, build.version_id)
        version.status = "building"


@pytest.mark.slow
def test_a_build_left_by_a_dead_process_fails_when_the_next_one_starts(
    tmp_path: Path, remote: GitRemote
) -> None:
    settings = build_settings(tmp_path / "data", "http://127.0.0.1:9", "unused")
    settings = settings.model_copy(
        update={"github": settings.github.model_copy(update={"app_id": None})}
    )
    with serve_builds(settings) as server, server.client() as client:
        workflow = client.post("/v1/workflows", json={"name": "st", "repo": remote.url}).json()
        deploy = f"/v1/workflows/{workflow['id']}/deploy"
        first = wait_build(client, client.post(deploy, json={}).json()["id"])
        server.call(_as_if_a_process_died_building(server.engine, first["id"]))
        second = wait_build(client, client.post(deploy, json={}).json()["id"])
        assert second["status"] == "succeeded"
        stale = client.get(f"/v1/builds/{first['id']}").json()
        assert stale["status"] == "failed" and "interrupted" in stale["message"]
        versions = client.get(f"/v1/workflows/{workflow['id']}/versions").json()
        statuses = {v["workflowVersion"]["id"]: v["workflowVersion"]["status"] for v in versions}
        assert statuses[first["workflowVersionId"]] == "build_failed"
        assert statuses[second["workflowVersionId"]] == "ready"


@pytest.mark.slow
def test_cli_deploy_without_a_commit_builds_the_branch_head(
    client: httpx.Client, remote: GitRemote, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow = client.post("/v1/workflows", json={"name": "clidep", "repo": remote.url}).json()
    url = str(client.base_url).rstrip("/")
    with pytest.raises(SystemExit) as exited:
        main(["--url", url, "workflows", "deploy", workflow["slug"], "--wait"])
    out, err = capsys.readouterr()
    assert exited.value.code == 0, err
    build = client.get(f"/v1/builds/{out.splitlines()[0]}").json()
    assert (build["commitId"], build["status"]) == (remote.shas[0], "succeeded")
