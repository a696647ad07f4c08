"""Installations belong to workspaces: the App's setup flow, the admin API and the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.cli.main import main
from app.github.installations import InstallationOwners
from core.workspaces import Workspaces
from tests.fakes.github import FakeGitHub, fake_github, new_private_key_pem
from tests.integration.build_fixtures import (
    APP_ID,
    WS,
    BuildServer,
    build_settings,
    serve_builds,
)

pytestmark = pytest.mark.slow

NEW = 81_000_000_001  # made after the install link was issued
OLD = 82_000_000_002  # made a day before
TAKEN = 83_000_000_003  # owned by another workspace


@pytest.fixture
def private_key() -> str:
    return new_private_key_pem()


@pytest.fixture
def github(private_key: str) -> Iterator[FakeGitHub]:
    with fake_github(APP_ID, private_key) as fake:
        yield fake


@pytest.fixture
def server(tmp_path: Path, github: FakeGitHub, private_key: str) -> Iterator[BuildServer]:
    settings = build_settings(tmp_path / "data", github.url, private_key)
    github_settings = settings.github.model_copy(
        update={"app_slug": "conveyor-test", "web_url": "https://github.com"}
    )
    with serve_builds(settings.model_copy(update={"github": github_settings}), ()) as served:
        yield served


def _state(client: httpx.Client) -> str:
    link = client.get("/v1/github/install-link")
    assert link.status_code == 200, link.text
    url = link.json()["url"]
    assert url.startswith("https://github.com/apps/conveyor-test/installations/new?state=")
    state: str = parse_qs(urlsplit(url).query)["state"][0]
    return state


def _setup(client: httpx.Client, installation: int | str, state: str) -> httpx.Response:
    return client.get(
        "/github/setup",
        params={"installation_id": installation, "setup_action": "install", "state": state},
    )


def test_the_setup_flow_connects_a_new_installation_to_the_workspace_that_asked(
    server: BuildServer, github: FakeGitHub
) -> None:
    for installation in (NEW, OLD, TAKEN):
        github.installations[installation] = {"acme/shop"}
    github.installation_created[NEW] = datetime.now(UTC)
    github.installation_created[TAKEN] = datetime.now(UTC)

    async def other_workspace_owns_taken() -> None:
        sessions = server.engine.store.sessions
        other = await Workspaces(sessions).create("other", 20)
        await InstallationOwners(sessions).connect(TAKEN, other.id, by="tests", exclusive=True)

    server.call(other_workspace_owns_taken())
    with server.client() as client:
        state = _state(client)
        connected = _setup(client, NEW, state)
        assert connected.status_code == 200, connected.text
        assert connected.json()["status"] == "connected"
        assert connected.json()["installationId"] == NEW
        assert connected.json()["workspaceId"] == WS
        assert connected.json()["connectedBy"] == "setup"

        old = _setup(client, OLD, state)
        assert old.status_code == 403 and "made before this install link" in old.json()["message"]
        taken = _setup(client, TAKEN, state)
        assert taken.status_code == 409 and "belongs to another workspace" in taken.text
        unknown = _setup(client, 89_000_000_009, state)
        assert unknown.status_code == 404
        forged = _setup(client, NEW, state[:-3] + "AAA")
        assert forged.status_code == 400 and "not one this server issued" in forged.text
        not_a_number = _setup(client, "12x", state)
        assert not_a_number.status_code == 400

        listed = client.get("/v1/github/installations").json()
        assert [c["installationId"] for c in listed] == [NEW]
        trail = client.get("/v1/audit-events").json()
        assert trail[0]["auditEvent"]["action"] == "installation.connected"


def test_operators_connect_and_disconnect_with_an_admin_key(server: BuildServer) -> None:
    async def keys() -> tuple[str, str]:
        created = server.engine.keys
        admin = await created.create(WS, "ops", admin=True)
        plain = await created.create(WS, "dev")
        return admin.secret, plain.secret

    admin, plain = server.call(keys())
    one = f"/v1/github/installations/{OLD}/workspaces/{WS}"
    with server.client() as client:
        as_plain = {"Authorization": f"Bearer {plain}"}
        as_admin = {"Authorization": f"Bearer {admin}"}
        refused = client.put(one, headers=as_plain, json={})
        assert refused.status_code == 403 and "admin key" in refused.json()["message"]
        fields = client.put(one, headers=as_admin, json={"workspace": "x"})
        assert fields.status_code == 400 and "empty JSON object" in fields.json()["message"]
        connected = client.put(one, headers=as_admin, json={})
        assert connected.status_code == 200, connected.text
        assert connected.json()["installationId"] == OLD
        assert connected.json()["connectedBy"].startswith("key:")
        assert client.put(one, headers=as_admin, json={}).status_code == 200  # again: unchanged
        mine = client.get("/v1/github/installations", headers=as_plain).json()
        assert [c["installationId"] for c in mine] == [OLD]
        nowhere = client.put(
            f"/v1/github/installations/{OLD}/workspaces/wsp-none", headers=as_admin, json={}
        )
        assert nowhere.status_code == 404
        assert client.delete(one, headers=as_plain).status_code == 403
        assert client.delete(one, headers=as_admin).status_code == 204
        again = client.delete(one, headers=as_admin)
        assert again.status_code == 404 and "is not connected" in again.json()["message"]
        assert client.get("/v1/github/installations", headers=as_plain).json() == []


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_the_cli_connects_lists_and_disconnects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    code, _, err = _cli(capsys, "github", "connect", str(OLD), *data)
    assert code == 1 and err.startswith("error: no Conveyor database in ")
    assert not (tmp_path / "data").exists()
    code, out, _ = _cli(capsys, "migrate", *data)
    assert code == 0 and out.startswith("migrated the schema from revision none to ")
    code, out, _ = _cli(capsys, "github", "connect", str(OLD), *data)
    assert code == 0 and out == f"installation {OLD} connected to workspace {WS}\n"
    code, out, _ = _cli(capsys, "github", "list", *data)
    assert code == 0 and f'"installationId": {OLD}' in out and '"connectedBy": "cli"' in out
    code, out, _ = _cli(capsys, "github", "disconnect", str(OLD), *data)
    assert code == 0 and out == f"installation {OLD} disconnected from workspace {WS}\n"
    code, _, err = _cli(capsys, "github", "disconnect", str(OLD), *data)
    assert code == 1 and err == f"error: installation {OLD} is not connected to workspace {WS!r}\n"
    code, _, err = _cli(capsys, "github", "connect", str(OLD), "--workspace", "wsp-none", *data)
    assert code == 1 and err == "error: workspace 'wsp-none' not found\n"
    code, _, err = _cli(capsys, "github", "connect", "nope", *data)
    assert code == 2 and "INSTALLATION_ID" in err
