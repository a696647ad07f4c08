"""A TypeScript repository without a Dockerfile, built by BuildKit from a generated Node
Dockerfile on the local Node base image, pushed, registered and run in containers."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.build_settings import BuildSettings
from core.settings import DockerSettings
from tests.integration.build_fixtures import (
    BuildServer,
    build_settings,
    make_remote,
    serve_builds,
    wait_build,
    wait_for,
)
from tests.integration.docker_fixtures import HOST_CA_BUNDLE
from tests.integration.engine_fixtures import executor_settings
from tests.integration.node_fixtures import (
    build_conveyor_sdk,
    conveyor_ts_project,
    render_ts_project,
    requires_node,
    requires_render_ts_sdk,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), requires_node]

DOCKER = "/usr/bin/docker"
REGISTRY = "127.0.0.1:5000"
NODE_BASE_IMAGE = "conveyor-node-base:bookworm"


def _docker_ready() -> str | None:
    try:
        subprocess.run(
            [DOCKER, "image", "inspect", NODE_BASE_IMAGE], check=True, capture_output=True
        )
        subprocess.run([DOCKER, "buildx", "version"], check=True, capture_output=True)
        httpx.get(f"http://{REGISTRY}/v2/", timeout=2).raise_for_status()
    except (OSError, subprocess.CalledProcessError, httpx.HTTPError) as exc:
        return f"docker, buildx, {NODE_BASE_IMAGE} and a registry on {REGISTRY} are needed: {exc}"
    return None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BuildServer]:
    problem = _docker_ready()
    if problem is not None:
        pytest.skip(problem)  # .ci/setup.d/20-docker.sh, 21-node-image.sh, 25-registry.sh
    settings = build_settings(tmp_path / "data", "http://127.0.0.1:9", "unused")
    prefix = f"{REGISTRY}/conveyor-test-{uuid.uuid4().hex[:8]}"
    builds = BuildSettings(
        builder="buildkit",
        node_base_image=NODE_BASE_IMAGE,
        registry=prefix,
        # npm reaches its registry through this machine's TLS-intercepting egress
        ca_bundle=HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None,
        build_timeout_seconds=600,
    )
    settings = settings.model_copy(
        update={
            "builds": builds,
            "executor": executor_settings(kind="docker", kill_grace_seconds=1.0),
            "docker": DockerSettings(binary=DOCKER, name_prefix=f"cvt-{uuid.uuid4().hex[:6]}"),
            "github": settings.github.model_copy(update={"app_id": None}),
        }
    )
    with serve_builds(settings) as server:
        yield server
    tags = subprocess.run(
        [DOCKER, "images", "--format", "{{.Repository}}:{{.Tag}}", f"{prefix}/*"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if tags:
        subprocess.run([DOCKER, "rmi", "-f", *tags], capture_output=True)


def _deploy(client: httpx.Client, workflow_id: str) -> tuple[dict[str, Any], str, float]:
    response = client.post(f"/v1/workflows/{workflow_id}/deploy", json={})
    assert response.status_code == 202, response.text
    started = time.monotonic()
    build = wait_build(client, str(response.json()["id"]), timeout=600)
    seconds = round(time.monotonic() - started, 1)
    log = client.get(f"/v1/builds/{build['id']}/logs").text
    assert build["status"] == "succeeded", log
    return build, log, seconds


def _run(client: httpx.Client, task: str, input: Any) -> dict[str, Any]:
    run = client.post("/v1/task-runs", json={"task": task, "input": input})
    assert run.status_code == 202, run.text
    run_id = run.json()["id"]
    return wait_for(
        f"run {run_id} in its container",
        lambda: (
            r
            if (r := client.get(f"/v1/task-runs/{run_id}").json())["status"]
            in ("succeeded", "failed")
            else None
        ),
        timeout=120,
    )


@requires_render_ts_sdk
def test_a_node_repository_builds_into_an_image_and_runs(
    server: BuildServer, tmp_path: Path
) -> None:
    remote = make_remote(tmp_path)
    # a package.json no earlier build had, so the first build cannot hit the cache
    files = render_ts_project()
    files["package.json"] = files["package.json"].replace(
        b'"version": "1.0.0"', f'"version": "1.0.0", "description": "{uuid.uuid4()}"'.encode()
    )
    remote.commit(files, "v1")
    with server.client() as client:
        workflow = client.post("/v1/workflows", json={"name": "tsimg", "repo": remote.url}).json()
        _, log1, seconds1 = _deploy(client, workflow["id"])
        assert "from a generated Node Dockerfile (FROM conveyor-node-base:bookworm)" in log1
        assert "npm ci" in log1 and "dependency layer from the cache" not in log1
        assert 'start command: node dist/main.js (the "start" script of package.json)' in log1

        remote.commit({"src/extra.ts": "export const answer = 42;\n"}, "v2")
        second, log2, seconds2 = _deploy(client, workflow["id"])
        assert "dependency layer from the cache" in log2, log2
        print(f"\nNode image build: first {seconds1} s, second {seconds2} s")

        version = client.get(f"/v1/workflows/{workflow['id']}").json()["activeVersionId"]
        assert version == second["workflowVersionId"]
        assert _run(client, "tsimg/sum_squares", [3, 4])["results"] == [25]
        failed = _run(client, "tsimg/fails", ["in a container"])
        assert failed["error"] == "boom: in a container"
        assert failed["attempts"][0]["stackTrace"].startswith("Error: boom: in a container\n")


@pytest.fixture(scope="module")
def conveyor_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_conveyor_sdk(tmp_path_factory.mktemp("sdk") / "typescript")


def test_a_workflow_on_conveyors_sdk_runs_in_its_image_with_typed_inputs(
    server: BuildServer, tmp_path: Path, conveyor_sdk: Path
) -> None:
    remote = make_remote(tmp_path)
    remote.commit(conveyor_ts_project(conveyor_sdk), "v1")
    with server.client() as client:
        workflow = client.post("/v1/workflows", json={"name": "tsconv", "repo": remote.url}).json()
        _, log, seconds = _deploy(client, workflow["id"])
        assert "from a generated Node Dockerfile" in log
        print(f"\nNode image build (Conveyor's SDK): {seconds} s")
        refused = client.post("/v1/task-runs", json={"task": "tsconv/square", "input": ["3"]})
        assert refused.status_code == 400
        assert refused.json()["message"].endswith("a: expected int, got '3'")
        assert _run(client, "tsconv/add_squares", [3, 4])["results"] == [25]
