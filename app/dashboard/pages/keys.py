"""API keys of the signed-in workspace: list, create (the secret shown once), revoke."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.api.accounts import audit_log, key_json
from app.api.auth import ANONYMOUS
from app.api.state import app_state
from app.dashboard.forms import read_form
from app.dashboard.handlers import page
from app.dashboard.rendering import render
from app.dashboard.visitor import Visitor
from core.audit import Actor

FORM_LIMIT = 16 * 1024


def _actor(visitor: Visitor) -> Actor:
    key_id = visitor.session.key_id
    return Actor(f"key:{key_id}") if key_id else Actor(ANONYMOUS)


async def _page(
    request: Request,
    visitor: Visitor,
    *,
    created: dict[str, Any] | None = None,
    problems: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    keys = await app_state(request).runtime.keys.list(visitor.workspace)
    context = {
        "keys": [key_json(key) for key in keys],
        "created": created,
        "problems": problems or [],
    }
    return render(request, visitor, "keys.html", context, status_code=status_code)


async def keys_page(request: Request, visitor: Visitor) -> Response:
    return await _page(request, visitor)


def _expiry(text: str) -> tuple[datetime | None, list[str]]:
    if not text.strip():
        return None, []
    try:
        days = int(text)
    except ValueError:
        return None, [f"expiry {text!r} is not a whole number of days"]
    if not 1 <= days <= 3650:
        return None, ["the expiry must be from 1 to 3650 days"]
    return datetime.now(UTC) + timedelta(days=days), []


async def create_key(request: Request, visitor: Visitor) -> Response:
    form = await read_form(request, FORM_LIMIT)
    visitor.check_csrf(form.get("csrf_token"))
    name = form.get("name").strip()
    expires, problems = _expiry(form.get("expires_in_days"))
    if not name or len(name) > 200 or "\x00" in name:
        problems.append("a name of 1 to 200 characters is required")
    if problems:
        return await _page(request, visitor, problems=problems, status_code=400)
    created = await app_state(request).runtime.keys.create(
        visitor.workspace, name, expires_at=expires
    )
    await audit_log(request).record(
        visitor.workspace,
        _actor(visitor),
        "key.created",
        created.id,
        {"name": name, "prefix": created.info.prefix, "admin": False, "via": "dashboard"},
    )
    shown = {"name": name, "secret": created.secret}
    return await _page(request, visitor, created=shown, status_code=201)


async def revoke_key(request: Request, visitor: Visitor) -> Response:
    form = await read_form(request, FORM_LIMIT)
    visitor.check_csrf(form.get("csrf_token"))
    key_id = request.path_params["key_id"]
    revoked = await app_state(request).runtime.keys.revoke(visitor.workspace, key_id)
    await audit_log(request).record(
        visitor.workspace,
        _actor(visitor),
        "key.revoked",
        key_id,
        {"name": revoked.name, "prefix": revoked.prefix, "via": "dashboard"},
    )
    return RedirectResponse("/keys", status_code=303)


routes = [
    Route("/keys", page(keys_page), methods=["GET"]),
    Route("/keys", page(create_key), methods=["POST"]),
    Route("/keys/{key_id}/revoke", page(revoke_key), methods=["POST"]),
]
