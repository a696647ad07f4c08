"""Endpoint wrappers: session first, then the handler; failures become pages or JSON errors."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.api.errors import http_error
from app.api.responses import error_response
from app.dashboard.forms import FormError
from app.dashboard.rendering import render
from app.dashboard.visitor import (
    CsrfRejected,
    SignInRequired,
    Visitor,
    set_session_cookie,
    visitor_of,
)
from core.errors import ServiceError

logger = logging.getLogger("conveyor.dashboard")

Handler = Callable[[Request, Visitor], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]

CSRF_MESSAGE = (
    "This form was not sent from your current dashboard session (missing or stale security "
    "token), so nothing was changed. Reload the page and try again."
)


def sign_in_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/sign-in?next={quote(target, safe='')}"


def error_page(request: Request, visitor: Visitor | None, status: int, message: str) -> Response:
    return render(
        request,
        visitor,
        "error.html",
        {"status": status, "message": message},
        status_code=status,
    )


def page(handler: Handler, *, public: bool = False) -> Endpoint:
    """An HTML endpoint; without a signed-in session it redirects to the sign-in form."""

    async def endpoint(request: Request) -> Response:
        visitor = await visitor_of(request)
        try:
            if not public and not visitor.signed_in:
                raise SignInRequired
            response = await handler(request, visitor)
        except SignInRequired:
            response = RedirectResponse(sign_in_url(request), status_code=303)
        except CsrfRejected:
            logger.warning("csrf rejected: %s %s", request.method, request.url.path)
            response = error_page(request, visitor, 403, CSRF_MESSAGE)
        except FormError as exc:
            response = error_page(request, visitor, exc.status, exc.message)
        except ServiceError as exc:
            logger.info("dashboard %s %s: %s", request.method, request.url.path, exc.message)
            response = error_page(request, visitor, exc.http_status, exc.message)
        if visitor.new_cookie:
            set_session_cookie(request, response, visitor.session)
        return response

    return endpoint


def data(handler: Handler) -> Endpoint:
    """A JSON, text or event-stream endpoint of the dashboard: 401 JSON without a session."""

    async def endpoint(request: Request) -> Response:
        visitor = await visitor_of(request)
        if not visitor.signed_in:
            return error_response(401, "unauthorized", "sign in to the dashboard first")
        try:
            return await handler(request, visitor)
        except ServiceError as exc:
            return error_response(exc.http_status, exc.code, exc.message)

    return endpoint


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and not request.url.path.startswith(("/v1/", "/dashboard/"))


async def not_found_or_error(request: Request, exc: Exception) -> Response:
    """An unknown path asked for by a browser gets a page; the API keeps its JSON answers."""
    assert isinstance(exc, HTTPException)
    if exc.status_code != 404 or not _wants_html(request):
        return await http_error(request, exc)
    visitor = await visitor_of(request)
    message = f"There is no page at {request.url.path}."
    response = error_page(request, visitor if visitor.signed_in else None, 404, message)
    if visitor.new_cookie:
        set_session_cookie(request, response, visitor.session)
    return response
