"""`conveyor builder` processes on PostgreSQL: a shared queue, the registry cache, crashes, SIGTERM.

The server only queues builds (`CONVEYOR_BUILDS__IN_PROCESS=false`); builders are real
subprocesses building with BuildKit and pushing to the registry on 127.0.0.1:5000. Builder B
builds on a dockerd of its own, as a builder on another node would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.github import CheckRun, FakeGitHub, fake_github, new_private_key_pem
from tests.integration.build_fixtures import (
    APP_ID,
    INSTALLATION_ID,
    SECRET,
    GitRemote,
    make_remote,
    push_payload,
    send_webhook,
    serve_builds,
    wait_build,
)
from tests.integration.builder_fixtures import (
    DOCKER,
    REGISTRY,
    SECRETS_KEY,
    BuilderRun,
    docker_ready,
    push_registry_base,
    second_docker_daemon,
    settings_from,
    start_builder,
    wait_until,
)
from tests.integration.databases import fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MAIN = textwrap.dedent("""
    from conveyor import Workflows

    app = Workflows()


    @app.task
    def greet(name: str) -> str:
        return f"{GREETING} {name}"
""")


def main_py(greeting: str) -> str:
    return f"GREETING = {greeting!r}\n" + MAIN


@pytest.fixture(scope="module")
def base_image() -> str:
    problem = docker_ready()
    if problem is not None:
        pytest.fail(f"{problem} (.ci/setup.d/20-docker.sh and 25-registry.sh)", pytrace=False)
    return push_registry_base()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Two daemons that start with empty caches: the build nodes of builders A and B."""
    with (
        second_docker_daemon(tmp_path_factory.mktemp("dockerd-a")) as a,
        second_docker_daemon(tmp_path_factory.mktemp("dockerd-b")) as b,
    ):
        yield a, b


class Cluster:
    """The server (queueing only), its database, GitHub, and the builders' shared settings."""

    def __init__(self, tmp_path: Path, env: dict[str, str], github: FakeGitHub) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.github = github
        self.builders: list[BuilderRun] = []

    def builder(self, name: str, **env: str) -> BuilderRun:
        run = start_builder(name, {**self.env, **env}, self.tmp_path / "builders")
        self.builders.append(run)
        return run

    def stop(self) -> None:
        for run in self.builders:
            run.stop()


@pytest.fixture
def cluster(
    tmp_path: Path, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Cluster, httpx.Client]]:
    private_key = new_private_key_pem()
    prefix = f"{REGISTRY}/cvy-bt-{uuid.uuid4().hex[:8]}"
    with (
        fresh_database("postgres", tmp_path) as database_url,
        fake_github(APP_ID, private_key) as github,
    ):
        env = {
            "CONVEYOR_DATABASE__URL": database_url,
            "CONVEYOR_BLOBS__URL": f"file://{tmp_path / 'blobs'}",
            "CONVEYOR_BUILDS__SECRETS_KEY": SECRETS_KEY,
            "CONVEYOR_BUILDS__BUILDER": "buildkit",
            "CONVEYOR_BUILDS__BASE_IMAGE": base_image,
            "CONVEYOR_BUILDS__REGISTRY": prefix,
            "CONVEYOR_BUILDS__IN_PROCESS": "false",
            "CONVEYOR_BUILDS__PARALLEL_BUILDS": "1",
            "CONVEYOR_BUILDS__BUILD_TIMEOUT_SECONDS": "300",
            "CONVEYOR_EXECUTOR__KIND": "docker",
            "CONVEYOR_EXECUTOR__KILL_GRACE_SECONDS": "1",
            "CONVEYOR_DOCKER__BINARY": DOCKER,
            "CONVEYOR_DOCKER__NAME_PREFIX": f"cvb-{uuid.uuid4().hex[:6]}",
            "CONVEYOR_DOCKER__NETWORK": "none",
            "CONVEYOR_GITHUB__APP_ID": str(APP_ID),
            "CONVEYOR_GITHUB__PRIVATE_KEY": private_key,
            "CONVEYOR_GITHUB__WEBHOOK_SECRET": SECRET,
            "CONVEYOR_GITHUB__API_URL": github.url,
            "CONVEYOR_GITHUB__WEB_URL": (tmp_path / "remotes").as_uri(),
            "CONVEYOR_BUILDS__ALLOW_FILE_REPOS": "true",
            "CONVEYOR_BUILDER__HEARTBEAT_SECONDS": "0.5",
            "CONVEYOR_BUILDER__STALE_AFTER_SECONDS": "5",
            "CONVEYOR_BUILDER__POLL_SECONDS": "0.2",
        }
        settings = settings_from(
            {**env, "CONVEYOR_DATA_DIR": str(tmp_path / "server")}, monkeypatch
        )
        cluster = Cluster(tmp_path, env, github)
        try:
            with serve_builds(settings) as server, server.client() as client:
                yield cluster, client
        finally:
            cluster.stop()
            _remove_images(prefix)


def _remove_images(prefix: str) -> None:
    tags = subprocess.run(
        [DOCKER, "images", "--format", "{{.Repository}}:{{.Tag}}", f"{prefix}/*"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if tags:
        subprocess.run([DOCKER, "rmi", "-f", *tags], capture_output=True)


def new_workflow(
    cluster: Cluster, client: httpx.Client, name: str, files: dict[str, str], build: str = ""
) -> GitRemote:
    remote = make_remote(cluster.tmp_path, name=name)  # under the "GitHub" at tmp/remotes
    remote.commit(files, "first")
    cluster.github.installations.setdefault(INSTALLATION_ID, set()).add(remote.full_name)
    body = {"name": name, "repo": remote.url, "branch": "main", "buildCommand": build}
    created = client.post("/v1/workflows", json=body)
    assert created.status_code == 201, created.text
    return remote


def push(client: httpx.Client, remote: GitRemote) -> str:
    before = remote.shas[-2] if len(remote.shas) > 1 else "0" * 40
    answer = send_webhook(client, "push", push_payload(remote, before, remote.shas[-1]))
    assert answer.status_code == 200, answer.text
    (build_id,) = answer.json()["builds"]
    return str(build_id)


def finished(client: httpx.Client, build_id: str) -> dict[str, Any]:
    build = wait_build(client, build_id, timeout=300)
    log = client.get(f"/v1/builds/{build_id}/logs").text
    assert build["status"] == "succeeded", log
    build["log"] = log
    build["seconds"] = (_at(build["finishedAt"]) - _at(build["startedAt"])).total_seconds()
    return build


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


CACHED = "dependency layer from the cache"


def test_two_builders_share_the_queue_and_the_registry_cache(
    cluster: tuple[Cluster, httpx.Client], nodes: tuple[str, str]
) -> None:
    env, client = cluster
    deps = {"requirements.txt": f"# dependencies {uuid.uuid4()}\n"}  # new to every cache
    remote = new_workflow(env, client, "w", {"main.py": main_py("hello"), **deps})

    # builder A's daemon has built nothing yet (the first test of the module): a cold build
    a = env.builder("builder-a", CONVEYOR_BUILDS__DOCKER_HOST=nodes[0])
    cold = finished(client, push(client, remote))
    remote.commit({"main.py": main_py("bonjour")}, "code only")
    same = finished(client, push(client, remote))
    a.stop()
    assert a.wait(5) == 0
    # builder B's daemon has an empty cache too: what it reuses came through the registry
    b = env.builder("builder-b", CONVEYOR_BUILDS__DOCKER_HOST=nodes[1])
    remote.commit({"main.py": main_py("hola")}, "code only again")
    other = finished(client, push(client, remote))

    assert CACHED not in cold["log"]
    assert CACHED in same["log"] and CACHED in other["log"], other["log"]
    assert [x["builderName"] for x in (cold, same, other)] == ["builder-a"] * 2 + ["builder-b"]
    page = client.get(f"/builds/{other['id']}")
    assert page.status_code == 200 and f"on <code>builder-b</code> (<code>{other['builderId']}" in (
        page.text
    )
    print(
        f"\nbuild times (claim to version ready): cold {cold['seconds']:.1f} s, "
        f"cached on the same builder {same['seconds']:.1f} s, "
        f"cached on another builder {other['seconds']:.1f} s"
    )

    # six pushes at once, two builders
    a = env.builder("builder-a", CONVEYOR_BUILDS__DOCKER_HOST=nodes[0])
    remotes = [
        new_workflow(env, client, f"r{n}", {"main.py": main_py(f"hi {n}"), **deps})
        for n in range(6)
    ]
    builds = [push(client, r) for r in remotes]
    done = [finished(client, build_id) for build_id in builds]
    started = a.started_builds() + b.started_builds()
    earlier = [cold["id"], same["id"], other["id"]]  # the logs hold those too
    assert sorted(started) == sorted([*builds, *earlier]), "each build ran exactly once"
    assert all("attempts" not in build for build in done)
    names = {build["builderName"] for build in done}
    assert names == {"builder-a", "builder-b"}, "both builders took work"
    assert set(a.started_builds()) & set(builds) and set(b.started_builds()) & set(builds)
    for remote, build in zip(remotes, done, strict=True):
        workflow = client.get(f"/v1/workflows/{remote.name}").json()
        assert workflow["activeVersionId"] == build["workflowVersionId"]
    # a build's end is recorded before GitHub is told
    checks = wait_until("six completed check runs", lambda: _completed(env.github, builds))
    assert [c.history for c in checks] == [["queued", "in_progress", "completed"]] * 6
    assert all(c.conclusion == "success" for c in checks)


def _completed(github: FakeGitHub, builds: list[str]) -> list[CheckRun] | None:
    checks = [c for c in list(github.check_runs.values()) if c.external_id in builds]
    done = len(checks) == len(builds) and all(c.status == "completed" for c in checks)
    return checks if done else None


def _building(client: httpx.Client, build_id: str, step: str) -> dict[str, Any] | None:
    build: dict[str, Any] = client.get(f"/v1/builds/{build_id}").json()
    if build["status"] != "running" or "builderName" not in build:
        return None
    return build if step in client.get(f"/v1/builds/{build_id}/logs").text else None


def test_a_killed_builders_build_is_finished_by_another(
    cluster: tuple[Cluster, httpx.Client], nodes: tuple[str, str]
) -> None:
    env, client = cluster
    # new files: no cache anywhere holds the build command's step
    code = {"main.py": main_py(f"hi {uuid.uuid4()}")}
    remote = new_workflow(env, client, "k", code, build="sleep 6")
    runs = {
        "builder-a": env.builder("builder-a", CONVEYOR_BUILDS__DOCKER_HOST=nodes[0]),
        "builder-b": env.builder("builder-b", CONVEYOR_BUILDS__DOCKER_HOST=nodes[1]),
    }
    build_id = push(client, remote)
    running = wait_until(
        "the build command to run", lambda: _building(client, build_id, "sleep 6"), 120
    )
    victim = runs.pop(running["builderName"])
    # the node dies: the builder and every process it started (its docker CLI)
    os.killpg(victim.process.pid, signal.SIGKILL)
    victim.wait(10)
    (survivor,) = runs.values()

    build = finished(client, build_id)
    assert build["builderName"] == survivor.name and build["attempts"] == 2
    assert f"builder {victim.name} stopped before the build ended" in build["log"]
    version_id = build["workflowVersionId"]
    workflow = client.get(f"/v1/workflows/{remote.name}").json()
    assert workflow["activeVersionId"] == version_id
    (version,) = client.get(f"/v1/workflows/{remote.name}/versions").json()
    assert version["workflowVersion"]["status"] == "ready"
    assert version["workflowVersion"]["tasks"] == ["greet"], "registered once"
    (check,) = wait_until("the completed check run", lambda: _completed(env.github, [build_id]))
    assert check.history[0] == "queued" and check.history[-1] == "completed"
    assert check.conclusion == "success"


def test_sigterm_hands_back_or_finishes_the_build_in_progress(
    cluster: tuple[Cluster, httpx.Client],
) -> None:
    env, client = cluster
    code = {"main.py": main_py(f"hi {uuid.uuid4()}")}
    remote = new_workflow(env, client, "t", code, build="sleep 6")
    hasty = env.builder("hasty", CONVEYOR_BUILDER__STOP_GRACE_SECONDS="0.2")
    build_id = push(client, remote)
    wait_until("the build command to run", lambda: _building(client, build_id, "sleep 6"))
    hasty.signal(signal.SIGTERM)
    assert hasty.wait(30) == 0, hasty.output()
    back = client.get(f"/v1/builds/{build_id}").json()
    assert back["status"] == "queued" and "handed back by builder hasty" in back["message"]
    assert "builderId" not in back
    leftovers = subprocess.run(
        ["pgrep", "-f", f"build-contexts/{build_id}"], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == [], "the stopped builder's docker CLI is gone"

    patient = env.builder("patient")
    taken = finished(client, build_id)
    assert taken["builderName"] == "patient" and taken["attempts"] == 2
    remote.commit({"main.py": main_py(f"hello again {uuid.uuid4()}")}, "second")
    second = push(client, remote)
    wait_until("the second build to run", lambda: _building(client, second, "sleep 6"))
    patient.signal(signal.SIGTERM)
    assert patient.wait(120) == 0, patient.output()
    build = finished(client, second)
    assert build["builderName"] == "patient" and "attempts" not in build
