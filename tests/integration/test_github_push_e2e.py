"""Push to a tracked branch → signed webhook → build → check run → the new code serves runs."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.github import FakeGitHub, fake_github, new_private_key_pem
from tests.integration.build_fixtures import (
    APP_ID,
    INSTALLATION_ID,
    BuildServer,
    GitRemote,
    build_settings,
    make_remote,
    make_wheel,
    push_payload,
    send_webhook,
    serve_builds,
    wait_build,
    wait_for,
)

pytestmark = pytest.mark.slow

MAIN = textwrap.dedent("""
    import os
    import time
    from pathlib import Path

    import tinydep
    from conveyor import Retry, Workflows

    app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


    @app.task
    def greet(name: str) -> str:
        return f"{GREETING} {name} ({tinydep.mark()})"


    @app.task
    def greet_when(name: str, gate: str) -> str:
        # Waits for the test to open the gate, so it is still running when a new version lands.
        deadline = time.monotonic() + 60
        while not Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return greet(name)
""")


def main_py(greeting: str) -> str:
    return f"GREETING = {greeting!r}\n" + MAIN


@pytest.fixture
def private_key() -> str:
    return new_private_key_pem()


@pytest.fixture
def github(private_key: str) -> Iterator[FakeGitHub]:
    with fake_github(APP_ID, private_key) as fake:
        fake.installations[INSTALLATION_ID] = {"octo/hello"}
        yield fake


@pytest.fixture
def remote(tmp_path: Path, scratch: Path) -> GitRemote:
    remote = make_remote(tmp_path)
    # in the scratch folder, which the sandboxed install step is shown (an operator mount)
    wheel = make_wheel(scratch / "wheels", "tinydep", "1.0", "def mark():\n    return 'dep'\n")
    remote.commit({"main.py": main_py("hello"), "requirements.txt": f"{wheel}\n"}, "first version")
    return remote


@pytest.fixture
def server(
    tmp_path: Path, scratch: Path, github: FakeGitHub, private_key: str
) -> Iterator[BuildServer]:
    """A build server whose sandbox mounts `scratch` (its settings are read with it set)."""
    with serve_builds(build_settings(tmp_path / "data", github.url, private_key)) as server:
        yield server


def create_workflow(client: httpx.Client, remote: GitRemote) -> dict[str, Any]:
    response = client.post(
        "/v1/workflows",
        json={
            "name": "hello",
            "repo": remote.url,
            "branch": "main",
            "buildCommand": "echo building $GREETING_ENV",
            "envVars": {"GREETING_ENV": "from-env", "API_TOKEN": "s3cret-value"},
        },
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def push(client: httpx.Client, remote: GitRemote, before: str, after: str) -> list[str]:
    response = send_webhook(client, "push", push_payload(remote, before, after))
    assert response.status_code == 200, response.text
    builds: list[str] = response.json()["builds"]
    return builds


def run_task(client: httpx.Client, task: str, input: Any) -> dict[str, Any]:
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


def test_push_builds_registers_and_serves_the_new_code(
    server: BuildServer, github: FakeGitHub, remote: GitRemote, scratch: Path
) -> None:
    with server.client() as client:
        workflow = create_workflow(client, remote)
        assert workflow["envVarKeys"] == ["API_TOKEN", "GREETING_ENV"]
        assert "s3cret-value" not in client.get(f"/v1/workflows/{workflow['id']}").text

        (first,) = push(client, remote, "0" * 40, remote.shas[0])
        build = wait_build(client, first)
        log = client.get(f"/v1/builds/{first}/logs").text
        assert build["status"] == "succeeded", log
        assert "==> [1/4]" in log and "pip install" in log and "building from-env" in log

        check = next(iter(github.check_runs.values()))
        assert check.head_sha == remote.shas[0] and check.external_id == first
        assert check.history == ["queued", "in_progress", "completed"]
        assert check.conclusion == "success"
        assert "greet" in check.output["summary"] and "greet_when" in check.output["summary"]

        v1 = client.get(f"/v1/workflows/{workflow['id']}").json()["activeVersionId"]
        assert v1 == build["workflowVersionId"]
        assert run_task(client, "hello/greet", ["ann"])["results"] == ["hello ann (dep)"]

        # A run that starts on version 1 and is still running when version 2 becomes active.
        gate = scratch / "gate"  # a file the sandboxed task can see
        pinned = client.post(
            "/v1/task-runs", json={"task": "hello/greet_when", "input": ["bob", str(gate)]}
        ).json()
        wait_for(
            "the pinned run to start",
            lambda: (
                client.get(f"/v1/task-runs/{pinned['id']}").json()["status"] == "running" or None
            ),
        )

        remote.commit({"main.py": main_py("bonjour")}, "second version")
        (second,) = push(client, remote, remote.shas[0], remote.shas[1])
        build2 = wait_build(client, second)
        log2 = client.get(f"/v1/builds/{second}/logs").text
        assert build2["status"] == "succeeded", log2
        assert "reusing virtualenv" in log2 and "pip install" not in log2
        v2 = client.get(f"/v1/workflows/{workflow['id']}").json()["activeVersionId"]
        assert v2 == build2["workflowVersionId"] != v1

        assert run_task(client, "hello/greet", ["ann"])["results"] == ["bonjour ann (dep)"]
        gate.touch()
        old = wait_for(
            "the pinned run to end",
            lambda: (
                run
                if (run := client.get(f"/v1/task-runs/{pinned['id']}").json())["status"]
                == "succeeded"
                else None
            ),
        )
        assert old["workflowVersionId"] == v1 and old["results"] == ["hello bob (dep)"]
        # The explicit version slug still reaches version 1.
        assert run_task(client, f"hello/greet:{v1}", ["cy"])["results"] == ["hello cy (dep)"]

        versions = client.get(f"/v1/workflows/{workflow['id']}/versions").json()
        assert [v["workflowVersion"]["status"] for v in versions] == ["ready", "ready"]
        assert github.token_requests == 1  # the installation token was cached


def test_code_that_raises_at_import_fails_registration_and_keeps_the_previous_version(
    server: BuildServer, github: FakeGitHub, remote: GitRemote
) -> None:
    with server.client() as client:
        workflow = create_workflow(client, remote)
        (first,) = push(client, remote, "0" * 40, remote.shas[0])
        assert wait_build(client, first)["status"] == "succeeded"
        v1 = client.get(f"/v1/workflows/{workflow['id']}").json()["activeVersionId"]

        broken = "raise RuntimeError('config missing: DATABASE_URL')\n" + main_py("oops")
        remote.commit({"main.py": broken}, "broken version")
        (second,) = push(client, remote, remote.shas[0], remote.shas[1])
        build = wait_build(client, second)
        assert build["status"] == "failed"
        versions = {
            v["workflowVersion"]["id"]: v["workflowVersion"]
            for v in client.get(f"/v1/workflows/{workflow['id']}/versions").json()
        }
        failed = versions[build["workflowVersionId"]]
        assert failed["status"] == "registration_failed"
        assert "config missing: DATABASE_URL" in failed["message"]

        check = next(c for c in github.check_runs.values() if c.external_id == second)
        assert check.history == ["queued", "in_progress", "completed"]
        assert check.conclusion == "failure"
        assert "config missing: DATABASE_URL" in check.output["summary"]

        assert client.get(f"/v1/workflows/{workflow['id']}").json()["activeVersionId"] == v1
        assert run_task(client, "hello/greet", ["ann"])["results"] == ["hello ann (dep)"]
