"""A `conveyor builder` registering on the Nomad executor, against the strict fake Nomad.

The builder builds the image with BuildKit (pushed to 127.0.0.1:5000), then registers it as a
dispatch of the version's parameterized job; the dispatch's `conveyor agent` sidecar relays the
register-mode worker to the builder itself. The fake runs the image as a folder holding the
commit's files (tests/fakes/nomad.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app.server import create_app
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime
from tests.fakes.nomad import FakeImage, FakeNomad, serve_fake_nomad
from tests.integration.build_fixtures import GitRemote, make_remote
from tests.integration.builder_fixtures import (
    DOCKER,
    REGISTRY,
    SECRETS_KEY,
    BuilderRun,
    docker_ready,
    push_registry_base,
    settings_from,
    start_builder,
)
from tests.integration.databases import fresh_database
from tests.integration.nomad_fixtures import SECRET, until

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(300)]

AGENT_IMAGE = "conveyor:test"
MAIN = textwrap.dedent("""
    from conveyor import Workflows

    app = Workflows()


    @app.task
    def greet(name: str) -> str:
        return f"{GREETING} {name}"
""")


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgres", tmp_path) as url:
        yield url


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeNomad]:
    problem = docker_ready()
    if problem is not None:
        pytest.fail(f"{problem} (.ci/setup.d/20-docker.sh and 25-registry.sh)", pytrace=False)
    # allocation folders hold the socket: short, for the 108-byte limit
    root = Path(f"/tmp/fnb-{uuid.uuid4().hex[:10]}")
    root.mkdir()
    try:
        with serve_fake_nomad(root, {AGENT_IMAGE: FakeImage(tmp_path)}) as fake:
            yield fake
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serving(
    settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """The server (API, scheduler on Nomad) on a loopback port; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {**settings_env, "CONVEYOR_NOMAD__CONTROL_PLANE_URL": url}
    runtime = await Runtime.open(settings_from(env, monkeypatch))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime, anonymous_workspace=DEFAULT_WORKSPACE_ID),
            lifespan="off",
            log_level="warning",
            access_log=False,
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await until(lambda: _started(server), "the API to start", 30)
        await runtime.start()
        yield url
    finally:
        server.should_exit = True
        await task
        sock.close()
        await runtime.close()


async def _started(server: uvicorn.Server) -> bool:
    return bool(server.started)


def commit_image(
    remote: GitRemote, files: dict[str, str], images: dict[str, FakeImage], name: str, folder: Path
) -> str:
    """Commit `files` and make the fake know the image the builder will tag for it."""
    sha = remote.commit(files, "change")
    copy = folder / sha[:12]
    shutil.copytree(remote.work, copy, ignore=shutil.ignore_patterns(".git"))
    images[f"{name}:{sha[:12]}"] = FakeImage(copy)
    return sha


async def deploy(client: httpx.AsyncClient, workflow: str, sha: str) -> dict[str, Any]:
    answer = await client.post(f"/v1/workflows/{workflow}/deploy", json={"commitId": sha})
    assert answer.status_code == 202, answer.text
    build_id = answer.json()["id"]

    async def ended() -> dict[str, Any] | None:
        build: dict[str, Any] = (await client.get(f"/v1/builds/{build_id}")).json()
        return build if build["status"] in ("succeeded", "failed") else None

    build = await until(ended, f"build {build_id}", 180, 0.2)
    assert build is not None
    build["log"] = (await client.get(f"/v1/builds/{build_id}/logs")).text
    return build


async def run_greet(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    created = await client.post("/v1/task-runs", json={"task": "nw/greet", "input": [name]})
    assert created.status_code == 202, created.text
    run_id = created.json()["id"]

    async def ended() -> dict[str, Any] | None:
        run: dict[str, Any] = (await client.get(f"/v1/task-runs/{run_id}")).json()
        return run if run["status"] in ("succeeded", "failed", "canceled") else None

    run = await until(ended, f"run {run_id}", 120, 0.1)
    assert run is not None
    return run


async def test_registration_is_a_dispatch_of_the_new_image_and_a_failure_keeps_the_old(
    tmp_path: Path, fake: FakeNomad, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"{REGISTRY}/cvy-bn-{uuid.uuid4().hex[:8]}"
    image = f"{prefix}/nw"
    remote = make_remote(tmp_path, name="nw")
    images = fake.images
    first = commit_image(
        remote, {"main.py": "GREETING = 'hello'\n" + MAIN}, images, image, tmp_path / "images"
    )
    builder_port = _free_port()
    env = {
        "CONVEYOR_DATABASE__URL": database_url,
        "CONVEYOR_BLOBS__URL": f"file://{tmp_path / 'blobs'}",
        "CONVEYOR_BUILDS__SECRETS_KEY": SECRETS_KEY,
        "CONVEYOR_BUILDS__BUILDER": "buildkit",
        "CONVEYOR_BUILDS__BASE_IMAGE": await asyncio.to_thread(push_registry_base),
        "CONVEYOR_BUILDS__REGISTRY": prefix,
        "CONVEYOR_BUILDS__IN_PROCESS": "false",
        "CONVEYOR_BUILDS__ALLOW_FILE_REPOS": "true",  # the workflow's repository is file://
        "CONVEYOR_DOCKER__BINARY": DOCKER,
        "CONVEYOR_EXECUTOR__KIND": "nomad",
        "CONVEYOR_EXECUTOR__KILL_GRACE_SECONDS": "1",
        "CONVEYOR_NOMAD__ADDRESS": fake.url,
        "CONVEYOR_NOMAD__ATTEMPT_TOKEN_SECRET": SECRET,
        "CONVEYOR_NOMAD__AGENT_IMAGE": AGENT_IMAGE,
        "CONVEYOR_NOMAD__BLOCKING_WAIT_SECONDS": "5",
        "CONVEYOR_NOMAD__CPU_MHZ_PER_CORE": "100",
        "CONVEYOR_LIMITS__REGISTRATION_TIMEOUT_SECONDS": "60",
        "CONVEYOR_BUILDER__POLL_SECONDS": "0.2",
        "CONVEYOR_BUILDER__LISTEN_PORT": str(builder_port),
    }
    builder: BuilderRun | None = None
    async with serving({**env, "CONVEYOR_DATA_DIR": str(tmp_path / "server")}, monkeypatch) as url:
        try:
            builder = await asyncio.to_thread(
                start_builder, "nomad-builder", env, tmp_path / "builders"
            )
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                await _check(client, fake, remote, first, image, builder_port, tmp_path)
        finally:
            if builder is not None:
                await asyncio.to_thread(builder.stop)
    assert builder is not None and builder.wait(5) == 0
    log = builder.output()
    assert "registered Nomad job" in log


async def _check(
    client: httpx.AsyncClient,
    fake: FakeNomad,
    remote: GitRemote,
    first: str,
    image: str,
    builder_port: int,
    tmp_path: Path,
) -> None:
    created = await client.post("/v1/workflows", json={"name": "nw", "repo": remote.url})
    assert created.status_code == 201, created.text
    build = await deploy(client, "nw", first)
    assert build["status"] == "succeeded", build["log"]
    v1 = build["workflowVersionId"]

    # the version's job runs the new image with the start command
    jobs = fake.registered_jobs()
    (job_id,) = [j for j, job in jobs.items() if job["Spec"]["Meta"]["conveyor_version_id"] == v1]
    tasks = {t["Name"]: t for t in jobs[job_id]["Spec"]["TaskGroups"][0]["Tasks"]}
    worker = tasks["worker"]["Config"]
    assert worker["image"] == f"{image}:{first[:12]}"
    assert worker["args"][-2:] == ["conveyor-worker", "main:app"]
    # its first dispatch is the register step, calling back to the builder
    async with httpx.AsyncClient(base_url=fake.url) as nomad:
        (dispatched,) = fake.dispatched_jobs(job_id)
        view = (await nomad.get(f"/v1/job/{dispatched}")).json()
    assert view["Meta"]["mode"] == "register" and view["Meta"]["attempt_id"] == v1
    payload = json.loads(base64.b64decode(view["Payload"]))
    assert payload["control_plane_url"] == f"http://127.0.0.1:{builder_port}"

    served = await run_greet(client, "ann")
    assert served["status"] == "succeeded" and served["results"] == ["hello ann"], served

    broken = "raise RuntimeError('config missing: DATABASE_URL')\nGREETING = 'oops'\n" + MAIN
    second = commit_image(remote, {"main.py": broken}, fake.images, image, tmp_path / "images")
    failed = await deploy(client, "nw", second)
    assert failed["status"] == "failed", failed["log"]
    assert "config missing: DATABASE_URL" in failed["log"]
    versions = (await client.get("/v1/workflows/nw/versions")).json()
    statuses = {v["workflowVersion"]["id"]: v["workflowVersion"]["status"] for v in versions}
    assert statuses == {v1: "ready", failed["workflowVersionId"]: "registration_failed"}
    assert (await client.get("/v1/workflows/nw")).json()["activeVersionId"] == v1
    still = await run_greet(client, "bob")
    assert still["results"] == ["hello bob"] and still["workflowVersionId"] == v1
