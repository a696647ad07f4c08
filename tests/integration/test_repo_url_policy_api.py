"""`POST /v1/workflows` against the repository URL policy: 400 naming the rule, or 201."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from core.build_settings import BuildSettings
from core.db.models import Workflow
from core.settings import Settings
from tests.integration.build_fixtures import WS, BuildServer, serve_builds, wait_build
from tests.integration.dev_server import dev_server

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BuildServer]:
    # a production server (no file:// repositories); `localhost` is an allowed git host so that
    # a name resolving to 127.0.0.1 gets past the host list to the address check
    settings = Settings(data_dir=tmp_path / "data", builds=BuildSettings(git_hosts=("localhost",)))
    with serve_builds(settings, installations=()) as served:
        yield served


@pytest.mark.parametrize(
    ("repo", "rule"),
    [
        ("file:///srv/acme/shop", "file-repository"),
        ("http://github.com/acme/shop", "scheme"),
        ("https://127.0.0.1/acme/shop", "ip-address"),
        ("https://169.254.169.254/latest/meta-data", "ip-address"),
        ("ssh://git@10.0.0.1/acme/shop.git", "ip-address"),
        ("https://localhost/acme/shop", "resolves-to"),
        ("https://gitlab.com/acme/shop", "git-host"),
    ],
)
def test_a_refused_repository_is_a_400_naming_its_rule(
    server: BuildServer, repo: str, rule: str
) -> None:
    with server.client() as client:
        answer = client.post("/v1/workflows", json={"name": "shop", "repo": repo})
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "invalid_request"
        assert answer.json()["message"].endswith(f"[rule: {rule}]")
        assert client.get("/v1/workflows/shop").status_code == 404  # nothing was stored


def test_a_github_repository_is_created_and_a_bad_change_keeps_it(server: BuildServer) -> None:
    with server.client() as client:
        created = client.post(
            "/v1/workflows", json={"name": "shop", "repo": "https://github.com/acme/shop"}
        )
        assert created.status_code == 201, created.text
        changed = client.patch("/v1/workflows/shop", json={"repo": "https://127.0.0.1/acme/shop"})
        assert changed.status_code == 400 and "[rule: ip-address]" in changed.json()["message"]
        kept = client.get("/v1/workflows/shop").json()
        assert kept["buildConfig"]["repo"] == "https://github.com/acme/shop"
        scp = client.patch("/v1/workflows/shop", json={"repo": "git@github.com:acme/shop.git"})
        assert scp.status_code == 200, scp.text


def test_the_policy_is_checked_again_before_every_fetch(server: BuildServer) -> None:
    """A workflow stored before the policy (or before its name pointed inside the network) is
    refused when it is built: a deploy of the branch head is a 400, a build of a commit fails."""
    stored = server.call(_store_workflow(server, "https://localhost/acme/shop"))
    with server.client() as client:
        head = client.post(f"/v1/workflows/{stored}/deploy", json={})
        assert head.status_code == 400 and "[rule: resolves-to]" in head.json()["message"]
        answer = client.post(f"/v1/workflows/{stored}/deploy", json={"commitId": "a" * 40})
        assert answer.status_code == 202, answer.text
        build = wait_build(client, answer.json()["id"], timeout=60)
    assert build["status"] == "failed"
    assert "localhost resolves to 127.0.0.1, a loopback address" in build["message"]
    assert "[rule: resolves-to]" in build["message"]


async def _store_workflow(server: BuildServer, repo_url: str) -> str:
    now = datetime.now(UTC)
    async with server.engine.store.sessions.begin() as session:
        session.add(
            Workflow(
                id="wf-stored",
                workspace_id=WS,
                slug="stored",
                name="stored",
                start_command="conveyor-worker main:app",
                root_dir="",
                repo_url=repo_url,
                branch="main",
                created_at=now,
                updated_at=now,
            )
        )
    return "wf-stored"


def test_conveyor_dev_accepts_file_repositories(tmp_path: Path) -> None:
    workflow = tmp_path / "wf"
    workflow.mkdir()
    (workflow / "main.py").write_text(
        "from conveyor import Workflows\n\napp = Workflows()\n\n\n"
        "@app.task\ndef ping() -> str:\n    return 'pong'\n"
    )
    with dev_server(workflow, tmp_path / "data") as running:
        created = httpx.post(
            f"{running.url}/v1/workflows",
            json={"name": "local", "repo": "file:///srv/acme/shop"},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        still_refused = httpx.post(
            f"{running.url}/v1/workflows",
            json={"name": "meta", "repo": "https://169.254.169.254/latest/meta-data"},
            timeout=30,
        )
        assert still_refused.status_code == 400
        assert "[rule: ip-address]" in still_refused.json()["message"]
