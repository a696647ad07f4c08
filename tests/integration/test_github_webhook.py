"""The webhook receiver: nothing is trusted or recorded before the signature checks out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.github.signature import sign, signature_valid
from core.db.models import GitHubInstallation, WebhookDelivery
from tests.fakes.github import FakeGitHub, fake_github, new_private_key_pem
from tests.integration.build_fixtures import (
    APP_ID,
    INSTALLATION_ID,
    SECRET,
    BuildServer,
    GitRemote,
    build_settings,
    installation_payload,
    make_remote,
    push_payload,
    send_webhook,
    serve_builds,
)


@pytest.fixture
def private_key() -> str:
    return new_private_key_pem()


@pytest.fixture
def github(private_key: str) -> Iterator[FakeGitHub]:
    with fake_github(APP_ID, private_key) as fake:
        fake.installations[INSTALLATION_ID] = {"octo/hello"}
        yield fake


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    remote = make_remote(tmp_path)
    remote.commit({"main.py": "from conveyor import Workflows\napp = Workflows()\n"}, "init")
    return remote


@pytest.fixture
def server(
    tmp_path: Path, github: FakeGitHub, private_key: str, remote: GitRemote
) -> Iterator[BuildServer]:
    settings = build_settings(tmp_path / "data", github.url, private_key)
    with serve_builds(settings) as server, server.client() as client:
        created = client.post("/v1/workflows", json={"name": "hello", "repo": remote.url})
        assert created.status_code == 201, created.text
        yield server


@pytest.fixture
def client(server: BuildServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def deliveries(server: BuildServer) -> list[str]:
    async def ids() -> list[str]:
        assert server.runtime is not None
        async with server.runtime.store.sessions() as session:
            return list(await session.scalars(select(WebhookDelivery.id)))

    return server.call(ids())


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"zen": "Design for failure."}'
    header = sign("It's a Secret to Everybody", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert signature_valid("It's a Secret to Everybody", body, header)
    assert not signature_valid("It's a Secret to Everybody", body + b" ", header)
    assert not signature_valid("another secret", body, header)
    assert not signature_valid("It's a Secret to Everybody", body, None)
    assert not signature_valid("It's a Secret to Everybody", body, header.replace("sha256", "sha1"))


@pytest.mark.slow
def test_forged_unsigned_replayed_and_malformed_deliveries_build_nothing(
    server: BuildServer, client: httpx.Client, remote: GitRemote
) -> None:
    payload = push_payload(remote, "0" * 40, remote.shas[0])

    unsigned = send_webhook(client, "push", payload, secret=None)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "unauthorized"
    forged = send_webhook(client, "push", payload, secret="guessed-secret")
    assert forged.status_code == 401
    body = json.dumps(payload).encode()
    tampered = client.post(
        "/github/webhook",
        content=body.replace(b"main", b"mainx", 1),
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "d-tampered",
            "X-Hub-Signature-256": sign(SECRET, body),
        },
    )
    assert tampered.status_code == 401
    assert deliveries(server) == []  # refused before anything was recorded

    malformed = send_webhook(client, "push", None, raw=b'{"ref": "refs/heads/main",')
    assert malformed.status_code == 400 and malformed.json()["code"] == "invalid_request"
    not_an_object = send_webhook(client, "push", None, raw=b"[1, 2]")
    assert not_an_object.status_code == 400
    missing_fields = send_webhook(client, "push", {"ref": "refs/heads/main"})
    assert missing_fields.status_code == 400 and "after" in missing_fields.json()["message"]

    first = send_webhook(client, "push", payload, delivery="d-1")
    assert first.status_code == 200 and len(first.json()["builds"]) == 1
    (built,) = first.json()["builds"]
    replay = send_webhook(client, "push", payload, delivery="d-1")
    assert replay.status_code == 409 and replay.json()["code"] == "conflict"
    assert "d-1 was received already: replays are refused" in replay.json()["message"]
    # the header is not signed: the same push under a new delivery id builds nothing new
    resent = send_webhook(client, "push", payload, delivery="d-1-resent")
    assert resent.status_code == 200, resent.text
    assert resent.json()["builds"] == [] and resent.json()["existingBuilds"] == [built]
    assert len(client.get("/v1/builds").json()) == 1  # only the genuine delivery built

    other_branch = send_webhook(
        client, "push", push_payload(remote, "0" * 40, remote.shas[0], branch="feature")
    )
    assert other_branch.json()["builds"] == []
    deleted = dict(payload, deleted=True, after="0" * 40)
    assert send_webhook(client, "push", deleted).json()["status"] == "ignored"
    assert len(client.get("/v1/builds").json()) == 1


@pytest.mark.slow
def test_ping_and_installation_events_are_recorded(
    server: BuildServer, client: httpx.Client
) -> None:
    ping = send_webhook(client, "ping", {"zen": "Keep it logically awesome.", "hook_id": 123456})
    assert ping.status_code == 200 and ping.json()["status"] == "pong"

    created = send_webhook(client, "installation", installation_payload("created", ["octo/hello"]))
    assert created.status_code == 200 and created.json()["status"] == "recorded"
    added = send_webhook(
        client,
        "installation_repositories",
        {
            "action": "added",
            "installation": installation_payload("created", [])["installation"],
            "repository_selection": "selected",
            "repositories_added": [{"id": 7, "name": "etl", "full_name": "octo/etl"}],
            "repositories_removed": [],
            "sender": {"login": "test", "id": 1},
        },
    )
    assert added.status_code == 200
    suspend = installation_payload("suspend", [])
    del suspend["repositories"]
    suspended = send_webhook(client, "installation", suspend)
    assert suspended.status_code == 200

    async def installation() -> GitHubInstallation:
        assert server.runtime is not None
        async with server.runtime.store.sessions() as session:
            return await session.get_one(GitHubInstallation, INSTALLATION_ID)

    row = server.call(installation())
    assert row.account == "octo" and not row.active
    assert json.loads(row.repositories) == ["octo/etl", "octo/hello"]
    assert len(deliveries(server)) == 4
