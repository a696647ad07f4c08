"""A real `conveyor dev` refuses DNS-rebound and cross-site requests; real clients still work."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from conveyor import Client
from tests.integration.dev_server import CONVEYOR, DevServer, dev_server
from tests.integration.engine_fixtures import copy_workflow

pytestmark = pytest.mark.slow

RUN = {"task": "wf/leaf", "input": [1]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    root = tmp_path_factory.mktemp("cross-site")
    env = {"CONVEYOR_LIMITS__MIN_TIMEOUT_SECONDS": "1"}  # the engine workflow has short ones
    with dev_server(copy_workflow("engine", root), root / "data", env=env) as running:
        yield running


def run_count(server: DevServer) -> int:
    return len(httpx.get(f"{server.url}/v1/task-runs", params={"limit": 100}).json())


def test_dns_rebinding_is_refused_on_every_route(server: DevServer) -> None:
    """What a browser sends once evil.example resolves to 127.0.0.1: its own name as Host."""
    port = urlsplit(server.url).port
    before = run_count(server)
    rebound = {"host": f"evil.example:{port}"}
    with httpx.Client(base_url=server.url, headers=rebound, timeout=30) as client:
        for method, path in [
            ("GET", "/healthz"),
            ("GET", "/v1/tasks"),
            ("GET", "/v1/task-runs"),
            ("GET", "/openapi.json"),
            ("GET", "/runs"),
        ]:
            response = client.request(method, path)
            assert response.status_code == 400, (method, path)
            assert response.json()["code"] == "untrusted_host"
            assert "evil.example" in response.json()["message"]
        response = client.post("/v1/task-runs", json=RUN)
        assert response.status_code == 400
        deploy = client.post("/v1/workflows", json={"name": "x", "repo": "file:///tmp/a/b"})
        assert deploy.status_code == 400
    assert run_count(server) == before


def test_cross_site_writes_are_refused(server: DevServer) -> None:
    before = run_count(server)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        foreign = client.post("/v1/task-runs", json=RUN, headers={"origin": "http://evil.example"})
        assert foreign.status_code == 403
        body = b'{"task": "wf/leaf", "input": [1]}'
        plain = client.post("/v1/task-runs", content=body, headers={"content-type": "text/plain"})
        assert plain.status_code == 415
        assert "application/json" in plain.json()["message"]
    assert run_count(server) == before


def test_conveyor_client_and_cli_still_work(server: DevServer) -> None:
    with Client(base_url=server.url) as client:
        assert client.run("wf/leaf", [41]).result == 42
    localhost = server.url.replace("127.0.0.1", "localhost")
    done = subprocess.run(
        [CONVEYOR, "--url", localhost, "run", "wf/middle", "1", "--wait"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "20\n"), done.stderr
