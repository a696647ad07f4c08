"""Two workspaces, one installation each, the same `owner/name` on two hosts.

A push from workspace A's installation builds only A's workflow (on the configured GitHub), and
the installation's token reaches GitHub's host and no other: workspace B's workflow, whose
repository is `acme/shop` on another host, neither builds nor ever sees a token.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.builds import make_build_services
from app.github.installations import InstallationOwners
from builder.catalog import WorkflowChanges
from core.db.models import Build, Workflow
from core.workspaces import Workspaces
from tests.fakes.git_http import GitHost, git_host
from tests.fakes.github import FakeGitHub, fake_github, new_private_key_pem
from tests.integration.build_fixtures import (
    APP_ID,
    WS,
    BuildServer,
    GitRemote,
    build_settings,
    git,
    make_remote,
    push_payload,
    send_webhook,
    serve_builds,
    wait_build,
)

pytestmark = pytest.mark.slow

A_INSTALLATION = 51_000_000_001
B_INSTALLATION = 52_000_000_002
MAIN = """from conveyor import Workflows

app = Workflows()


@app.task
def ping() -> str:
    return "pong"
"""


@pytest.fixture
def private_key() -> str:
    return new_private_key_pem()


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    remote = make_remote(tmp_path, owner="acme", name="shop")
    remote.commit({"main.py": MAIN}, "first")
    git(remote.bare, "config", "uploadpack.allowReachableSHA1InWant", "true")
    return remote


@pytest.fixture
def github(private_key: str, remote: GitRemote) -> Iterator[FakeGitHub]:
    with fake_github(APP_ID, private_key) as fake:
        fake.installations[A_INSTALLATION] = {"acme/shop"}
        fake.installations[B_INSTALLATION] = {"bee/tools"}
        fake.repos["acme/shop"] = remote.bare
        yield fake


@pytest.fixture
def elsewhere(remote: GitRemote, github: FakeGitHub) -> Iterator[GitHost]:
    """Another git host serving the same `acme/shop` to anyone."""
    with git_host(remote.bare.parent.parent, github.ledger) as host:
        yield host


@pytest.fixture
def server(tmp_path: Path, github: FakeGitHub, private_key: str) -> Iterator[BuildServer]:
    settings = build_settings(tmp_path / "data", github.url, private_key)
    # repositories live on the fake GitHub, over plain HTTP on loopback; no file:// here
    settings = settings.model_copy(
        update={
            "github": settings.github.model_copy(update={"web_url": github.url}),
            "builds": settings.builds.model_copy(update={"allow_file_repos": False}),
        }
    )
    with serve_builds(settings, installations=(A_INSTALLATION,)) as served:
        yield served


async def _store_workflow(
    server: BuildServer, workspace_id: str, workflow_id: str, repo_url: str
) -> None:
    """A workflow of `repo_url` stored as it is (as one saved before the URL policy, or on a
    host an operator allows, would be)."""
    now = datetime.now(UTC)
    async with server.engine.store.sessions.begin() as session:
        session.add(
            Workflow(
                id=workflow_id,
                workspace_id=workspace_id,
                slug=workflow_id.removeprefix("wf-"),
                name=workflow_id,
                start_command="conveyor-worker main:app",
                root_dir="",
                repo_url=repo_url,
                branch="main",
                created_at=now,
                updated_at=now,
            )
        )


def _workspace_b(server: BuildServer, repo_url: str) -> tuple[str, str]:
    """Workspace B, owning its installation, with a workflow of `repo_url`."""

    async def make() -> tuple[str, str]:
        sessions = server.engine.store.sessions
        workspace = await Workspaces(sessions).create("b", 20)
        await InstallationOwners(sessions).connect(
            B_INSTALLATION, workspace.id, by="tests", exclusive=True
        )
        await _store_workflow(server, workspace.id, "wf-b-shop", repo_url)
        return workspace.id, "wf-b-shop"

    return server.call(make())


def _builds_of(server: BuildServer, workflow_id: str) -> int:
    async def count() -> int:
        async with server.engine.store.sessions() as session:
            found = await session.scalar(
                select(func.count()).where(Build.workflow_id == workflow_id)
            )
            return int(found or 0)

    return server.call(count())


def _installation_of(server: BuildServer, workflow_id: str) -> int | None:
    async def read() -> int | None:
        async with server.engine.store.sessions() as session:
            return (await session.get_one(Workflow, workflow_id)).installation_id

    return server.call(read())


def _push(client: httpx.Client, remote: GitRemote, installation: int) -> dict[str, Any]:
    payload = push_payload(remote, "0" * 40, remote.shas[0])
    payload["installation"]["id"] = installation
    answer = send_webhook(client, "push", payload)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _host(url: str) -> str:
    return url.split("://", 1)[1]


def test_a_push_builds_only_its_installations_workspace_and_only_github_gets_the_token(
    server: BuildServer, github: FakeGitHub, elsewhere: GitHost, remote: GitRemote
) -> None:
    _, b_workflow = _workspace_b(server, f"{elsewhere.url}/acme/shop.git")
    with server.client() as client:
        created = client.post(
            "/v1/workflows", json={"name": "shop", "repo": f"{github.url}/acme/shop.git"}
        )
        assert created.status_code == 201, created.text
        a_workflow = created.json()["id"]
        # GitHub said which installation reads acme/shop, and workspace A owns it
        assert _installation_of(server, a_workflow) == A_INSTALLATION

        answer = _push(client, remote, A_INSTALLATION)
        (build_id,) = answer["builds"]
        build = wait_build(client, build_id)
        assert build["status"] == "succeeded", client.get(f"/v1/builds/{build_id}/logs").text
        assert build["workflowId"] == a_workflow
        # the same owner/name from workspace B's installation: B's repository is not on GitHub
        assert _push(client, remote, B_INSTALLATION)["builds"] == []
        # an installation no workspace owns builds nothing at all
        assert _push(client, remote, 59_000_000_009)["builds"] == []

    assert _builds_of(server, b_workflow) == 0
    assert _builds_of(server, a_workflow) == 1
    a_tokens = {token for token, (owner, _) in github.tokens.items() if owner == A_INSTALLATION}
    assert a_tokens  # the build fetched with one
    for token in a_tokens:
        assert github.ledger.hosts_of(token) == {_host(github.url)}
    assert all(host == _host(github.url) for host, _ in github.ledger.received)
    assert _installation_of(server, b_workflow) is None  # untouched by A's push


# what the attack found building on one push: every workflow whose URL merely ends in acme/shop
LOOKALIKES = {
    "wf-file": "file:///etc/acme/shop",
    "wf-http": "http://127.0.0.1:9/acme/shop",
    "wf-metadata": "https://169.254.169.254/acme/shop",
    "wf-gitlab": "https://gitlab.com/acme/shop",
    "wf-deeper": "https://github.com/mirror/acme/shop",
}


def test_workflows_whose_url_merely_ends_in_owner_name_never_build_on_a_push(
    server: BuildServer, github: FakeGitHub, remote: GitRemote
) -> None:
    async def store() -> None:
        for workflow_id, url in LOOKALIKES.items():
            await _store_workflow(server, WS, workflow_id, url)

    server.call(store())
    with server.client() as client:
        assert _push(client, remote, A_INSTALLATION)["builds"] == []
    for workflow_id in LOOKALIKES:
        assert _builds_of(server, workflow_id) == 0


def test_a_workspace_cannot_build_from_an_installation_it_does_not_own(
    server: BuildServer, github: FakeGitHub, remote: GitRemote
) -> None:
    """Workspace B names A's private repository on GitHub: it gets no installation (and so no
    token), and A's pushes never build B's workflow."""
    workspace_b, _ = _workspace_b(server, "https://gitlab.invalid/bee/tools")

    async def b_workflow_on_a_repo() -> str:
        catalog = make_build_services(server.engine).catalog
        record = await catalog.create(
            workspace_b,
            WorkflowChanges(name="copycat", repo_url=f"{github.url}/acme/shop.git"),
        )
        return record.id

    copycat = server.call(b_workflow_on_a_repo())
    assert _installation_of(server, copycat) is None
    with server.client() as client:
        assert _push(client, remote, A_INSTALLATION)["builds"] == []  # A has no workflow yet
    assert _builds_of(server, copycat) == 0
