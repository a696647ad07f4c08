"""Refuses URLs holding NUL: no id, filter or slug has one, and PostgreSQL cannot compare it."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.responses import error_response


class NulInUrlMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query: bytes = scope.get("query_string", b"")
            if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
                message = "the URL holds a NUL character (%00), which no path or parameter takes"
                await error_response(400, "invalid_request", message)(scope, receive, send)
                return
        await self.app(scope, receive, send)
