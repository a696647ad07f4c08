"""Env vars sealed under one secrets key: a clear 409 under another, readable once rotated."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from core.build_settings import BuildSettings
from tests.integration.build_fixtures import build_settings, serve_builds

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@contextmanager
def api(data_dir: Path, secrets_key: str) -> Iterator[httpx.Client]:
    """A server over `data_dir` whose process has `secrets_key` (as after a restart)."""
    settings = build_settings(data_dir, "http://127.0.0.1:9", "unused")
    settings = settings.model_copy(
        update={
            "github": settings.github.model_copy(update={"app_id": None}),
            # the workflow names a file:// repository, which a server refuses unless told
            "builds": BuildSettings(secrets_key=secrets_key, allow_file_repos=True),
        }
    )
    with serve_builds(settings) as server, server.client() as client:
        yield client


def test_rotating_the_secrets_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    body = {"name": "etl", "repo": "file:///srv/git/acme/etl", "envVars": {"DB_PASSWORD": "pw"}}
    with api(data, OLD) as client:
        created = client.post("/v1/workflows", json=body)
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]

    with api(data, NEW) as client:
        for response in [
            client.get(f"/v1/workflows/{workflow_id}"),
            client.patch(f"/v1/workflows/{workflow_id}", json={"branch": "dev"}),
        ]:
            assert response.status_code == 409, response.text
            answer = response.json()
            assert answer["code"] == "secrets_unreadable"
            assert "workflow 'etl'" in answer["message"] and workflow_id in answer["message"]
            assert "CONVEYOR_BUILDS__SECRETS_KEY=NEW,OLD" in answer["message"]
            assert "pw" not in response.text and OLD not in response.text
        # the list needs no secret and still answers
        assert client.get("/v1/workflows").status_code == 200

    with api(data, f"{NEW}, {OLD}") as client:
        read = client.get(f"/v1/workflows/{workflow_id}")
        assert read.status_code == 200 and read.json()["envVarKeys"] == ["DB_PASSWORD"]
        changed = client.patch(f"/v1/workflows/{workflow_id}", json={"envVars": {"TOKEN": "t"}})
        assert changed.json()["envVarKeys"] == ["DB_PASSWORD", "TOKEN"]

    # re-sealed with the newest key: the old one can go
    with api(data, NEW) as client:
        read = client.get(f"/v1/workflows/{workflow_id}")
        assert read.status_code == 200 and read.json()["envVarKeys"] == ["DB_PASSWORD", "TOKEN"]
