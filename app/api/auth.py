"""Who is asking: a Bearer API key names a workspace; loopback dev may allow no header at all."""

from __future__ import annotations

from starlette.requests import Request

from app.api.state import app_state
from core.errors import Unauthorized


async def workspace_of(request: Request) -> str:
    """The caller's workspace id, or Unauthorized.

    A request without a token acts as the anonymous workspace when one is configured (Render's
    local-dev clients send none, some send an empty `Bearer `). A token that is present but
    unknown is always refused, so a typo never silently falls back to anonymous access.
    """
    state = app_state(request)
    header = request.headers.get("authorization")
    token = _bearer_token(header) if header is not None else ""
    if not token:
        if state.anonymous_workspace is not None:
            return state.anonymous_workspace
        raise Unauthorized("missing API key: send 'Authorization: Bearer <api key>'")
    workspace = await state.runtime.keys.authenticate(token)
    if workspace is None:
        raise Unauthorized("unknown or revoked API key")
    return workspace


def _bearer_token(header: str) -> str:
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("malformed Authorization header: expected 'Bearer <api key>'")
    return token.strip()
