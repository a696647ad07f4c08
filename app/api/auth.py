"""Who is asking: a Bearer API key names a workspace; loopback dev may allow no header at all."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from app.api.state import app_state
from core.audit import Actor
from core.auth import KeyIdentity
from core.errors import Forbidden, Unauthorized

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Caller:
    workspace_id: str
    key: KeyIdentity | None  # None: `conveyor dev` serving a request that sent no key

    @property
    def actor(self) -> Actor:
        if self.key is None:
            return Actor(ANONYMOUS)
        return Actor(f"key:{self.key.id}", self.key.prefix)

    @property
    def admin(self) -> bool:
        return self.key is not None and self.key.admin

    @property
    def rate_key(self) -> str:
        """What rate limits count against: the key, or the dev server's one anonymous user."""
        return self.key.id if self.key is not None else ANONYMOUS


async def caller_of(request: Request) -> Caller:
    """The caller, or Unauthorized; looked up once per request.

    A request without a token acts as the anonymous workspace when one is configured (Render's
    local-dev clients send none, some send an empty `Bearer `). A token that is present but
    unknown, revoked or expired is always refused, so a typo never falls back to anonymous.
    """
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    state = app_state(request)
    header = request.headers.get("authorization")
    token = _bearer_token(header) if header is not None else ""
    if token:
        key = await state.runtime.keys.identify(token)
        if key is None:
            raise Unauthorized("unknown, revoked or expired API key")
        caller = Caller(key.workspace_id, key)
    elif state.anonymous_workspace is not None:
        caller = Caller(state.anonymous_workspace, None)
    else:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <api key>'")
    request.state.caller = caller
    return caller


async def workspace_of(request: Request) -> str:
    """The caller's workspace id, or Unauthorized."""
    return (await caller_of(request)).workspace_id


async def admin_of(request: Request) -> Caller:
    """The caller if its key has the admin scope; Forbidden otherwise."""
    caller = await caller_of(request)
    if not caller.admin:
        raise Forbidden("this needs an admin key (an API key created with the admin scope)")
    return caller


def _bearer_token(header: str) -> str:
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("malformed Authorization header: expected 'Bearer <api key>'")
    return token.strip()
