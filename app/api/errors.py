"""Failures as answers: `{"message", "code"}` with the matching status, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.responses import error_response
from core.errors import RateLimited, ServiceError

logger = logging.getLogger("conveyor.api")

_HTTP_CODES: Mapping[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_input",
    429: "rate_limited",
}


async def service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    response = error_response(exc.http_status, exc.code, exc.message)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "internal" if exc.status_code >= 500 else "error")
    message = exc.detail if exc.status_code != 404 else f"no route for {request.url.path}"
    if exc.status_code == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
    response = error_response(exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


EXCEPTION_HANDLERS: Mapping[Any, Any] = {
    ServiceError: service_error,
    HTTPException: http_error,
}


class CatchAllMiddleware:
    """Turns an unexpected exception into a 500 JSON answer; the traceback goes to the log only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(500, "internal", "internal server error")
            await response(scope, receive, send)
