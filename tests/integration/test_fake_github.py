"""The GitHub fake is as strict as its docstring: what it refuses, GitHub refuses too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from tests.fakes.github import FakeGitHub, fake_github, new_private_key_pem

APP_ID = 4242
INSTALLATION = 77
SHA = "a" * 40
KEY = new_private_key_pem()


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with fake_github(APP_ID, KEY) as fake:
        fake.installations[INSTALLATION] = {"octo/hello"}
        yield fake


def app_jwt(*, iat_ago: float = 60, life: float = 600, iss: int = APP_ID) -> str:
    issued = datetime.now(UTC) - timedelta(seconds=iat_ago)
    claims = {"iss": str(iss), "iat": issued, "exp": issued + timedelta(seconds=life)}
    return jwt.encode(claims, KEY, algorithm="RS256")


def token_answer(github: FakeGitHub, bearer: str) -> httpx.Response:
    return httpx.post(
        f"{github.url}/app/installations/{INSTALLATION}/access_tokens",
        headers={"Authorization": f"Bearer {bearer}"},
    )


def installation_token(github: FakeGitHub) -> str:
    answer = token_answer(github, app_jwt())
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


@pytest.mark.parametrize(
    ("iat_ago", "life", "iss", "status", "message"),
    [
        (60, 600, APP_ID, 201, None),  # what githubkit sends: backdated a minute, 10 minutes
        (0, 590, APP_ID, 201, None),
        (0, 660, APP_ID, 401, "'Expiration time' claim ('exp') is too far in the future"),
        (60, 660, APP_ID, 401, "'Expiration time' claim ('exp') is too far in the future"),
        (-120, 600, APP_ID, 401, "A JSON web token could not be decoded"),  # iat in the future
        (700, 600, APP_ID, 401, "A JSON web token could not be decoded"),  # expired
        (60, 600, APP_ID + 1, 401, "Integration not found"),
    ],
)
def test_app_jwts(
    github: FakeGitHub, iat_ago: float, life: float, iss: int, status: int, message: str | None
) -> None:
    answer = token_answer(github, app_jwt(iat_ago=iat_ago, life=life, iss=iss))
    assert answer.status_code == status, answer.text
    if message is not None:
        assert answer.json()["message"].startswith(message)


def test_a_jwt_signed_by_another_key_is_refused(github: FakeGitHub) -> None:
    issued = datetime.now(UTC) - timedelta(seconds=60)
    claims = {"iss": str(APP_ID), "iat": issued, "exp": issued + timedelta(seconds=600)}
    forged = jwt.encode(claims, new_private_key_pem(), algorithm="RS256")
    assert token_answer(github, forged).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"name": "build", "head_sha": SHA, "status": "in_progress"}, 201, None),
        (
            {"name": "build", "head_sha": SHA, "status": "completed", "conclusion": "success"},
            201,
            None,
        ),
        (
            {"name": "build", "head_sha": SHA, "status": "in_progress", "conclusion": "success"},
            422,
            "Invalid request: \"conclusion\" cannot be sent with status 'in_progress'",
        ),
        (
            {"name": "build", "head_sha": SHA, "status": "completed"},
            422,
            'Invalid request: "conclusion" is required when status is completed',
        ),
        (
            {"name": "build", "head_sha": "abc", "status": "queued"},
            422,
            'Invalid request: "head_sha" must be a 40-character sha',
        ),
    ],
)
def test_check_run_bodies(
    github: FakeGitHub, body: dict[str, str], status: int, message: str | None
) -> None:
    answer = httpx.post(
        f"{github.url}/repos/octo/hello/check-runs",
        json=body,
        headers={"Authorization": f"token {installation_token(github)}"},
    )
    assert answer.status_code == status, answer.text
    if message is not None:
        assert answer.json()["message"] == message


@pytest.mark.parametrize("content", [b"", b"{not json", b"name=build"])
def test_a_body_that_is_not_json_is_a_400(github: FakeGitHub, content: bytes) -> None:
    headers = {"Authorization": f"token {installation_token(github)}"}
    created = httpx.post(
        f"{github.url}/repos/octo/hello/check-runs",
        json={"name": "build", "head_sha": SHA},
        headers=headers,
    )
    assert created.status_code == 201
    for method, path in [
        ("POST", "/repos/octo/hello/check-runs"),
        ("PATCH", f"/repos/octo/hello/check-runs/{created.json()['id']}"),
    ]:
        answer = httpx.request(method, f"{github.url}{path}", content=content, headers=headers)
        assert answer.status_code == 400, (method, answer.text)
        assert answer.json()["message"] == "Problems parsing JSON"
