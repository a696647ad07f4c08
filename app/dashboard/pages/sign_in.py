"""Sign in with an API key (the session then acts as the key's workspace); sign out."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.api.state import app_state
from app.dashboard.forms import read_form
from app.dashboard.handlers import page
from app.dashboard.rendering import render
from app.dashboard.session import Session
from app.dashboard.visitor import Visitor, clear_session_cookie

logger = logging.getLogger("conveyor.dashboard")

FORM_LIMIT = 16 * 1024
HOME = "/runs"


def safe_next(target: str | None) -> str:
    """Only a path on this site: `next=//evil.example` or a full URL would be an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return HOME
    return target


async def sign_in_form(request: Request, visitor: Visitor) -> Response:
    target = safe_next(request.query_params.get("next"))
    if visitor.signed_in:
        return RedirectResponse(target, status_code=303)
    return render(request, visitor, "sign_in.html", {"next": target, "error": None})


async def sign_in(request: Request, visitor: Visitor) -> Response:
    form = await read_form(request, FORM_LIMIT)
    visitor.check_csrf(form.get("csrf_token"))
    target = safe_next(form.get("next"))
    key = form.get("api_key").strip()
    identity = await app_state(request).runtime.keys.identify(key) if key else None
    if identity is None:
        message = "Enter an API key." if not key else "That API key is unknown, revoked or expired."
        logger.info("dashboard sign-in refused: %s", "no key" if not key else "unknown key")
        context = {"next": target, "error": message}
        return render(request, visitor, "sign_in.html", context, status_code=401)
    # A new session (and CSRF token) on sign-in: a session planted before it is useless after.
    visitor.session = Session.fresh(identity.workspace_id, identity.id)
    visitor.new_cookie = True
    return RedirectResponse(target, status_code=303)


async def sign_out(request: Request, visitor: Visitor) -> Response:
    form = await read_form(request, FORM_LIMIT)
    visitor.check_csrf(form.get("csrf_token"))
    visitor.new_cookie = False
    response = RedirectResponse("/sign-in", status_code=303)
    clear_session_cookie(response)
    return response


routes = [
    Route("/sign-in", page(sign_in_form, public=True), methods=["GET"]),
    Route("/sign-in", page(sign_in, public=True), methods=["POST"]),
    Route("/sign-out", page(sign_out), methods=["POST"]),
]
