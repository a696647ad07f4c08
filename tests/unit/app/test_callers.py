"""Who a request's caller is: a Bearer key, the dev server's anonymous workspace, or a refusal."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from app.api.auth import Caller, admin_of, caller_of, workspace_of
from app.api.state import AppState
from core.audit import Actor
from core.auth import KeyIdentity
from core.errors import Forbidden, Unauthorized

pytestmark = pytest.mark.anyio

PLAIN = KeyIdentity("key-1", "wsp-key", "cvy_plain1", admin=False)
ADMIN = KeyIdentity("key-2", "wsp-ops", "cvy_admin1", admin=True)


class Keys:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def identify(self, secret: str) -> KeyIdentity | None:
        self.asked.append(secret)
        return {"cvy_plain": PLAIN, "cvy_admin": ADMIN}.get(secret)


def request(header: str | None, anonymous: str | None, keys: Keys) -> Request:
    runtime: Any = SimpleNamespace(keys=keys)
    state = AppState(runtime=runtime, anonymous_workspace=anonymous, sse_ping_seconds=1.0)
    app = SimpleNamespace(state=SimpleNamespace(conveyor=state))
    headers = [] if header is None else [(b"authorization", header.encode())]
    return Request({"type": "http", "app": app, "headers": headers, "state": {}})


@pytest.mark.parametrize(
    "header", ["Bearer cvy_plain", "bearer cvy_plain", "BEARER  cvy_plain ", " Bearer cvy_plain"]
)
@pytest.mark.parametrize("anonymous", ["wsp-anon", None])
async def test_a_known_key_names_its_workspace(header: str, anonymous: str | None) -> None:
    keys = Keys()
    caller = await caller_of(request(header, anonymous, keys))
    assert caller == Caller("wsp-key", PLAIN)
    assert keys.asked == ["cvy_plain"]
    assert caller.actor == Actor("key:key-1", "cvy_plain1")
    assert caller.admin is False
    assert caller.rate_key == "key-1"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Bearer   "])
async def test_no_key_is_the_anonymous_workspace_where_there_is_one(header: str | None) -> None:
    keys = Keys()
    caller = await caller_of(request(header, "wsp-anon", keys))
    assert caller == Caller("wsp-anon", None)
    assert keys.asked == []
    assert caller.actor == Actor("anonymous")
    assert caller.admin is False
    assert caller.rate_key == "anonymous"
    with pytest.raises(Unauthorized) as caught:
        await caller_of(request(header, None, keys))
    assert str(caught.value) == "missing API key: send 'Authorization: Bearer <api key>'"


@pytest.mark.parametrize("anonymous", ["wsp-anon", None])
async def test_an_unknown_key_never_falls_back_to_anonymous(anonymous: str | None) -> None:
    with pytest.raises(Unauthorized) as caught:
        await caller_of(request("Bearer cvy_typo", anonymous, Keys()))
    assert str(caught.value) == "unknown, revoked or expired API key"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Token cvy_plain", "cvy_plain", ""])
async def test_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        await caller_of(request(header, "wsp-anon", Keys()))
    assert str(caught.value) == "malformed Authorization header: expected 'Bearer <api key>'"


async def test_the_caller_is_looked_up_once_per_request() -> None:
    keys = Keys()
    asked = request("Bearer cvy_plain", None, keys)
    first = await caller_of(asked)
    assert await caller_of(asked) is first
    assert await workspace_of(asked) == "wsp-key"
    assert keys.asked == ["cvy_plain"]


async def test_admin_needs_an_admin_key() -> None:
    admin = await admin_of(request("Bearer cvy_admin", None, Keys()))
    assert admin == Caller("wsp-ops", ADMIN)
    assert admin.admin is True
    for header, anonymous in [("Bearer cvy_plain", None), (None, "wsp-anon")]:
        with pytest.raises(Forbidden) as caught:
            await admin_of(request(header, anonymous, Keys()))
        assert str(caught.value) == (
            "this needs an admin key (an API key created with the admin scope)"
        )
