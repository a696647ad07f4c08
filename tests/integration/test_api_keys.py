"""API keys over REST, the CLI and the dashboard; admin keys and workspaces; the audit trail."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli.config import build_settings
from app.cli.main import main
from core.audit import AuditLog
from scheduler.runtime import Runtime
from tests.integration.api_fixtures import WS, ApiServer, create_database, serve_api

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with serve_api(tmp_path_factory.mktemp("keys"), anonymous=None) as state:
        yield state


@pytest.fixture(scope="module")
def admin(server: ApiServer) -> str:
    """What `conveyor keys create --admin` makes: the first key, from the database."""
    return server.call(server.engine.keys.create(WS, "operator", admin=True)).secret


def client(server: ApiServer, secret: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def new_key(server: ApiServer, secret: str, **body: Any) -> dict[str, Any]:
    with client(server, secret) as http:
        answer = http.post("/v1/api-keys", json={"name": "k", **body})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def events(server: ApiServer, secret: str, workspace: str | None = None) -> list[dict[str, Any]]:
    params = {"workspaceId": workspace} if workspace else {}
    with client(server, secret) as http:
        answer = http.get("/v1/audit-events", params=params)
    assert answer.status_code == 200, answer.text
    return [item["auditEvent"] for item in answer.json()]


def test_create_list_use_and_revoke(server: ApiServer, admin: str) -> None:
    created = new_key(server, admin, name="ci deploys", expiresInDays=30)
    secret = created["secret"]
    assert secret.startswith("cvy_") and created["prefix"] == secret[:10]
    expires = datetime.fromisoformat(created["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)

    with client(server, secret) as http:
        assert http.get("/v1/task-runs").status_code == 200
        listed = http.get("/v1/api-keys")
    assert listed.status_code == 200
    mine = next(item["apiKey"] for item in listed.json() if item["apiKey"]["id"] == created["id"])
    assert mine["name"] == "ci deploys" and mine["status"] == "active" and "lastUsedAt" in mine
    assert secret not in listed.text and "secret" not in mine

    with client(server, admin) as http:
        assert http.delete(f"/v1/api-keys/{created['id']}").status_code == 204
        assert http.delete(f"/v1/api-keys/{created['id']}").status_code == 204  # again: same
    with client(server, secret) as http:
        refused = http.get("/v1/task-runs")
    assert refused.status_code == 401 and "revoked" in refused.json()["message"]
    with client(server, admin) as http:
        statuses = {
            i["apiKey"]["id"]: i["apiKey"]["status"] for i in http.get("/v1/api-keys").json()
        }
    assert statuses[created["id"]] == "revoked"

    trail = events(server, admin)
    mine_events = [e for e in trail if e["target"] == created["id"]]
    assert [e["action"] for e in mine_events] == ["key.revoked", "key.revoked", "key.created"]
    assert all(e["actor"].startswith("key:") and e["actorKeyPrefix"] == admin[:10] for e in trail)
    assert secret not in str(trail)


def test_expired_keys_are_refused(server: ApiServer) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    expired = server.call(server.engine.keys.create(WS, "old", expires_at=past))
    with client(server, expired.secret) as http:
        assert http.get("/v1/task-runs").status_code == 401


def test_only_admin_keys_manage_workspaces(server: ApiServer, admin: str) -> None:
    plain = new_key(server, admin, name="plain")["secret"]
    with client(server, plain) as http:
        assert http.get("/v1/workspaces").status_code == 403
        assert http.post("/v1/workspaces", json={"name": "x"}).status_code == 403
        refused = http.post("/v1/api-keys", json={"name": "root", "admin": True})
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        other = http.get("/v1/api-keys", params={"workspaceId": "wsp-someone-else"})
        assert other.status_code == 403

    with client(server, admin) as http:
        made = http.post("/v1/workspaces", json={"name": "team b", "maxConcurrency": 3})
        assert made.status_code == 201, made.text
        team = made.json()
        assert team["maxConcurrency"] == 3
        listed = [i["workspace"]["id"] for i in http.get("/v1/workspaces").json()]
        assert {WS, team["id"]} <= set(listed)
        unknown = http.post("/v1/api-keys", json={"name": "x", "workspaceId": "wsp-nope"})
        assert unknown.status_code == 404
    team_key = new_key(server, admin, name="team b key", workspaceId=team["id"])
    assert team_key["workspaceId"] == team["id"]

    # the new workspace sees none of the default workspace's things, and the reverse
    with client(server, team_key["secret"]) as http:
        assert http.get("/v1/workflows").json() == []
        assert (
            http.post("/v1/task-runs", json={"task": "api/square", "input": [2]}).status_code == 404
        )
        default_keys = [i["apiKey"]["id"] for i in new_list(http)]
        assert default_keys == [team_key["id"]]
    with client(server, plain) as http:
        assert http.delete(f"/v1/api-keys/{team_key['id']}").status_code == 404
    with client(server, admin) as http:
        assert http.delete(f"/v1/api-keys/{team_key['id']}").status_code == 204

    team_trail = events(server, admin, team["id"])
    assert [e["action"] for e in team_trail] == ["key.revoked", "key.created", "workspace.created"]
    assert "workspace.created" in [e["action"] for e in events(server, admin)]


def new_list(http: httpx.Client) -> list[dict[str, Any]]:
    answer = http.get("/v1/api-keys")
    assert answer.status_code == 200
    items: list[dict[str, Any]] = answer.json()
    return items


def test_workflow_changes_are_audited_without_values(server: ApiServer, admin: str) -> None:
    with client(server, admin) as http:
        # a value no random id or key in the trail could hold by chance (a two-letter one did)
        secret = "never-in-the-audit-trail"
        body = {"name": "etl", "repo": "file:///srv/acme/etl", "envVars": {"DB_PASSWORD": secret}}
        workflow = http.post("/v1/workflows", json=body).json()
        patched = http.patch(
            f"/v1/workflows/{workflow['id']}",
            json={"branch": "dev", "envVars": {"DB_PASSWORD": None}},
        )
        assert patched.status_code == 200
        assert http.delete(f"/v1/workflows/{workflow['id']}").status_code == 204
    trail = [e for e in events(server, admin) if e["target"] == workflow["id"]]
    assert [e["action"] for e in trail] == [
        "workflow.deleted",
        "workflow.updated",
        "workflow.created",
    ]
    assert trail[2]["details"]["envVarsSet"] == ["DB_PASSWORD"]
    assert trail[1]["details"] == {
        "slug": "etl",
        "fields": ["branch"],
        "envVarsSet": [],
        "envVarsRemoved": ["DB_PASSWORD"],
    }
    assert secret not in str(trail)


def test_a_dashboard_session_ends_when_its_key_is_revoked(server: ApiServer, admin: str) -> None:
    created = new_key(server, admin, name="browser")
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        token = CSRF.search(browser.get("/sign-in").text)
        assert token
        signed_in = browser.post(
            "/sign-in", data={"csrf_token": token.group(1), "api_key": created["secret"]}
        )
        assert signed_in.status_code == 303
        assert browser.get("/keys").status_code == 200
        with client(server, admin) as http:
            assert http.delete(f"/v1/api-keys/{created['id']}").status_code == 204
        after = browser.get("/keys")
        assert after.status_code == 303 and after.headers["location"].startswith("/sign-in")


def test_dashboard_keys_page(server: ApiServer, admin: str) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        token = CSRF.search(browser.get("/sign-in").text)
        assert token
        browser.post("/sign-in", data={"csrf_token": token.group(1), "api_key": admin})
        page = browser.get("/keys")
        csrf = CSRF.search(page.text)
        assert csrf and admin[:10] in page.text and admin not in page.text
        made = browser.post(
            "/keys",
            data={"csrf_token": csrf.group(1), "name": "from the page", "expires_in_days": "7"},
        )
        assert made.status_code == 201
        secret = re.search(r'id="secret" readonly size="60" value="(cvy_[^"]+)"', made.text)
        assert secret is not None
        with client(server, secret.group(1)) as http:
            assert http.get("/v1/task-runs").status_code == 200
        with client(server, admin) as http:
            names = {i["apiKey"]["name"]: i["apiKey"]["id"] for i in new_list(http)}
        key_id = names["from the page"]
        refused = browser.post(f"/keys/{key_id}/revoke", data={"csrf_token": "forged"})
        assert refused.status_code == 403
        revoked = browser.post(f"/keys/{key_id}/revoke", data={"csrf_token": csrf.group(1)})
        assert revoked.status_code == 303
        with client(server, secret.group(1)) as http:
            assert http.get("/v1/task-runs").status_code == 401


def conveyor(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_cli_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    create_database(tmp_path / "data")
    data = str(tmp_path / "data")
    code, secret, err = conveyor(
        capsys,
        "keys",
        "create",
        "--name",
        "ops",
        "--admin",
        "--expires-in-days",
        "2",
        "--data-dir",
        data,
    )
    assert code == 0 and secret.startswith("cvy_") and "shown only once" in err
    key_id = err.split("created key ")[1].split()[0]
    code, listed, _ = conveyor(capsys, "keys", "list", "--data-dir", data)
    assert code == 0 and secret.strip()[:10] in listed and "ops (admin)" in listed
    assert secret.strip() not in listed and "active" in listed
    code, _, err = conveyor(capsys, "keys", "revoke", key_id, "--data-dir", data)
    assert code == 0 and "revoked" in err
    code, listed, _ = conveyor(capsys, "keys", "list", "--json", "--data-dir", data)
    assert '"status": "revoked"' in listed
    code, _, err = conveyor(capsys, "keys", "revoke", "key-nope", "--data-dir", data)
    assert code == 1 and "not found" in err
    code, _, err = conveyor(capsys, "keys", "list", "--workspace", "wsp-nope", "--data-dir", data)
    assert code == 1 and "workspace 'wsp-nope' not found" in err


def test_cli_changes_are_audited(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    create_database(data)
    code, _, err = conveyor(capsys, "keys", "create", "--name", "a", "--data-dir", str(data))
    assert code == 0
    key_id = err.split("created key ")[1].split()[0]

    async def trail() -> list[tuple[str, str, str]]:
        runtime = await Runtime.open(build_settings(data_dir=data))
        try:
            page = await AuditLog(runtime.store.sessions).list(WS, cursor=None, limit=10)
        finally:
            await runtime.close()
        return [(e.actor.name, e.action, e.target) for e in page.items]

    assert asyncio.run(trail()) == [("cli", "key.created", key_id)]
