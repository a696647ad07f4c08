"""The BuildKit path: image built, pushed to the local registry, registered by running it."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.build_settings import BuildSettings
from core.settings import DockerSettings
from tests.integration.build_fixtures import (
    BuildServer,
    GitRemote,
    build_settings,
    make_remote,
    serve_builds,
    wait_build,
    wait_for,
)
from tests.integration.engine_fixtures import executor_settings

pytestmark = pytest.mark.slow

DOCKER = "/usr/bin/docker"
REGISTRY = "127.0.0.1:5000"
BASE_IMAGE = "conveyor-base:bookworm"

MAIN = """
from conveyor import Workflows

app = Workflows()


@app.task
def where() -> str:
    import os
    return f"{GREETING} from {os.environ.get('VIRTUAL_ENV')}"
"""


def _docker_ready() -> str | None:
    try:
        subprocess.run([DOCKER, "image", "inspect", BASE_IMAGE], check=True, capture_output=True)
        subprocess.run([DOCKER, "buildx", "version"], check=True, capture_output=True)
        httpx.get(f"http://{REGISTRY}/v2/", timeout=2).raise_for_status()
    except (OSError, subprocess.CalledProcessError, httpx.HTTPError) as exc:
        return f"docker, buildx, {BASE_IMAGE} and a registry on {REGISTRY} are needed: {exc}"
    return None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BuildServer]:
    problem = _docker_ready()
    if problem is not None:
        # .ci/setup.d/20-docker.sh and 25-registry.sh provide them: in CI their absence is a
        # broken machine, never a reason to pass without building anything
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and the BuildKit test cannot run: {problem}")
        pytest.skip(problem)
    settings = build_settings(tmp_path / "data", "http://127.0.0.1:9", "unused")
    prefix = f"{REGISTRY}/conveyor-test-{uuid.uuid4().hex[:8]}"
    settings = settings.model_copy(
        update={
            "builds": BuildSettings(builder="buildkit", base_image=BASE_IMAGE, registry=prefix),
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


def deploy(client: httpx.Client, workflow_id: str) -> dict[str, object]:
    response = client.post(f"/v1/workflows/{workflow_id}/deploy", json={})
    assert response.status_code == 202, response.text
    started = time.monotonic()
    build = wait_build(client, str(response.json()["id"]), timeout=240)
    build["seconds"] = round(time.monotonic() - started, 1)
    return build


def test_image_is_built_cached_pushed_and_registered(server: BuildServer, tmp_path: Path) -> None:
    remote: GitRemote = make_remote(tmp_path)
    remote.commit(
        # a dependency list no earlier build had, so the first build cannot hit the cache
        {"main.py": "GREETING = 'hello'\n" + MAIN, "requirements.txt": f"# {uuid.uuid4()}\n"},
        "v1",
    )
    with server.client() as client:
        workflow = client.post(
            "/v1/workflows",
            json={"name": "imgwf", "repo": remote.url, "buildCommand": "echo built > built.txt"},
        ).json()
        first = deploy(client, workflow["id"])
        log1 = client.get(f"/v1/builds/{first['id']}/logs").text
        assert first["status"] == "succeeded", log1
        assert "dependency layer from the cache" not in log1

        remote.commit({"main.py": "GREETING = 'bonjour'\n" + MAIN}, "v2")
        second = deploy(client, workflow["id"])
        log2 = client.get(f"/v1/builds/{second['id']}/logs").text
        assert second["status"] == "succeeded", log2
        assert "dependency layer from the cache" in log2
        print(f"\nimage build: first {first['seconds']} s, second {second['seconds']} s")

        assert server.runtime is not None
        prefix = server.runtime.settings.builds.registry
        assert prefix is not None
        repository = prefix.removeprefix(f"{REGISTRY}/") + "/imgwf"
        listed = httpx.get(f"http://{REGISTRY}/v2/{repository}/tags/list", timeout=10).json()
        assert {remote.shas[0][:12], remote.shas[1][:12], "latest"} <= set(listed["tags"])

        versions = client.get(f"/v1/workflows/{workflow['id']}/versions").json()
        assert [v["workflowVersion"]["tasks"] for v in versions] == [["where"], ["where"]]
        run = client.post("/v1/task-runs", json={"task": "imgwf/where", "input": []}).json()
        done = wait_for(
            "the run in the image",
            lambda: (
                r
                if (r := client.get(f"/v1/task-runs/{run['id']}").json())["status"]
                in ("succeeded", "failed")
                else None
            ),
            timeout=120,
        )
        assert done["results"] == ["bonjour from /opt/venv"], done
