"""A server killed between recording a build and announcing it: a builder releases the build
once its hold has run out, announces it, and builds it once.

`conveyor server` (builds out of process) records the build, then asks GitHub for a check run;
the fake GitHub hangs there, and the server is killed (SIGKILL) mid-request. A `conveyor builder`
started right after finds the build held, waits for the hold to run out, and takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from core.db.models import Build
from core.notify import asyncpg_dsn
from scheduler.runtime import DEFAULT_WORKSPACE_ID
from tests.fakes.github import FakeGitHub, fake_github, new_private_key_pem
from tests.integration.build_fixtures import (
    APP_ID,
    INSTALLATION_ID,
    SECRET,
    GitRemote,
    build_settings,
    make_remote,
    push_payload,
    send_webhook,
    serve_builds,
)
from tests.integration.builder_fixtures import SECRETS_KEY, start_builder, wait_until
from tests.integration.databases import fresh_database
from tests.integration.dev_server import CONVEYOR, free_port, wait_healthy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

HOLD_SECONDS = 15
MAIN = """from conveyor import Workflows

app = Workflows()


@app.task
def ping() -> str:
    return "pong"
"""


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    remote = make_remote(tmp_path)
    remote.commit({"main.py": MAIN}, "first")
    return remote


@pytest.fixture
def private_key() -> str:
    return new_private_key_pem()


@pytest.fixture
def github(private_key: str) -> Iterator[FakeGitHub]:
    with fake_github(APP_ID, private_key) as fake:
        fake.installations[INSTALLATION_ID] = {"octo/hello"}
        yield fake


def _env(url: str, tmp_path: Path, github: FakeGitHub, private_key: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "RENDER_"))}
    return {
        **base,
        "CONVEYOR_DATABASE__URL": url,
        "CONVEYOR_DATA_DIR": str(tmp_path / "server"),
        "CONVEYOR_BLOBS__URL": f"file://{tmp_path / 'blobs'}",
        "CONVEYOR_BUILDS__SECRETS_KEY": SECRETS_KEY,
        "CONVEYOR_BUILDS__IN_PROCESS": "false",
        "CONVEYOR_BUILDS__ALLOW_FILE_REPOS": "true",
        "CONVEYOR_GITHUB__APP_ID": str(APP_ID),
        "CONVEYOR_GITHUB__PRIVATE_KEY": private_key,
        "CONVEYOR_GITHUB__WEBHOOK_SECRET": SECRET,
        "CONVEYOR_GITHUB__API_URL": github.url,
        "CONVEYOR_GITHUB__WEB_URL": (tmp_path / "remotes").as_uri(),
        "CONVEYOR_BUILDER__HOLD_TIMEOUT_SECONDS": str(HOLD_SECONDS),
        "CONVEYOR_BUILDER__HEARTBEAT_SECONDS": "0.5",
        "CONVEYOR_BUILDER__POLL_SECONDS": "0.2",
    }


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([CONVEYOR, *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _builds(url: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            rows = await connection.fetch(
                "SELECT id, status, claimed_at, held_until, check_run_id, attempts, "
                "created_at, started_at, builder_id, message FROM builds"
            )
        finally:
            await connection.close()
        return [dict(row) for row in rows]

    return asyncio.run(read())


@contextlib.contextmanager
def _server(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CONVEYOR, "server", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = wait_healthy(process, log, banner="Conveyor API on")
        assert url == f"http://127.0.0.1:{port}", url
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_build_held_by_a_killed_server_is_released_after_the_timeout_and_built_once(
    tmp_path: Path, remote: GitRemote, github: FakeGitHub, private_key: str
) -> None:
    with fresh_database("postgres", tmp_path) as url:
        env = _env(url, tmp_path, github, private_key)
        _cli(env, "github", "connect", str(INSTALLATION_ID), "--workspace", DEFAULT_WORKSPACE_ID)
        key = _cli(env, "keys", "create", "--name", "tests").strip()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}
        with _server(env, port, tmp_path / "server.log") as server:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                created = client.post("/v1/workflows", json={"name": "hello", "repo": remote.url})
                assert created.status_code == 201, created.text
            github.stall_check_runs.set()

            def push() -> None:
                with (
                    contextlib.suppress(httpx.HTTPError),
                    httpx.Client(base_url=base, timeout=60) as hook,
                ):
                    send_webhook(hook, "push", push_payload(remote, "0" * 40, remote.shas[0]))

            pushing = threading.Thread(target=push)
            pushing.start()
            wait_until("the server to ask GitHub for a check run", lambda: github.stalled == 1)
            os.killpg(server.pid, signal.SIGKILL)  # between recording and announcing
            server.wait()
            pushing.join(timeout=60)
        github.stall_check_runs.clear()

        (held,) = _builds(url)
        assert held["status"] == "queued" and held["builder_id"] is None
        assert held["claimed_at"] is not None and held["held_until"] is not None
        assert held["check_run_id"] is None
        hold_ends: datetime = held["held_until"]
        assert (hold_ends - held["created_at"]).total_seconds() == pytest.approx(HOLD_SECONDS)

        builder = start_builder("b1", env, tmp_path / "builders")
        try:
            done = wait_until(
                "the held build to be built",
                lambda: next(
                    (b for b in _builds(url) if b["status"] in ("succeeded", "failed")), None
                ),
                timeout=240,
            )
        finally:
            builder.stop()
        assert done["status"] == "succeeded", done["message"]
        assert done["attempts"] == 1  # built once
        assert done["started_at"] >= hold_ends  # not before its hold ran out
        assert len(_builds(url)) == 1
        assert "held past its time" in builder.output()
        # the builder announced it: one check run, from queued to a success
        (check,) = github.check_runs.values()
        assert check.external_id == done["id"] and done["check_run_id"] == check.id
        assert check.history == ["queued", "in_progress", "completed"]
        assert check.conclusion == "success"
        assert github.stalled == 1  # the killed server's request created nothing


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_server_that_announces_its_build_releases_it_at_once(
    tmp_path: Path, github: FakeGitHub, private_key: str, remote: GitRemote, backend: str
) -> None:
    with fresh_database(backend, tmp_path) as url:
        settings = build_settings(tmp_path / "data", github.url, private_key)
        settings = settings.model_copy(
            update={
                "database": settings.database.model_copy(update={"url": url}),
                "builds": settings.builds.model_copy(update={"in_process": False}),
            }
        )
        with serve_builds(settings) as server, server.client() as client:
            created = client.post("/v1/workflows", json={"name": "hello", "repo": remote.url})
            assert created.status_code == 201, created.text
            pushed = send_webhook(client, "push", push_payload(remote, "0" * 40, remote.shas[0]))
            assert pushed.status_code == 200, pushed.text
            (build_id,) = pushed.json()["builds"]

            async def row() -> Build:
                async with server.engine.store.sessions() as session:
                    return await session.get_one(Build, build_id)

            build = server.call(row())
    (check,) = github.check_runs.values()
    assert build.status == "queued" and build.builder_id is None
    assert build.claimed_at is None and build.held_until is None  # claimable now
    assert build.check_run_id == check.id and check.history == ["queued"]
