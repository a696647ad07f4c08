"""How the dashboard is served: cacheable static files, the favicon, and gzip.

Static URLs carry a hash of the file (`?v=…`): a URL with the current hash is cached for a year
(`immutable`), so a page view costs one request; anything else must revalidate.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
STATIC_PREFIX = "/dashboard/static"
FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# API clients (Render's SDKs, instances through the relay, GitHub) get answers as they always did
_UNCOMPRESSED = ("/v1/", "/internal/", "/github/")


@cache
def asset_version(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def asset_url(name: str) -> str:
    """The URL of a static file, with the hash that makes it cacheable for good."""
    return f"{STATIC_PREFIX}/{name}?v={asset_version(name)}"


class CachedStaticFiles(StaticFiles):
    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        name = Path(full_path).name
        wanted = Request(scope).query_params.get("v")
        current = (STATIC / name).is_file() and wanted == asset_version(name)
        response.headers["Cache-Control"] = FOREVER if current else REVALIDATE
        return response


async def favicon(request: Request) -> Response:
    headers = {"Cache-Control": "public, max-age=86400"}
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml", headers=headers)


class DashboardGZip:
    """gzip for pages, fragments and static files; API answers are left as they always were."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=800, compresslevel=6)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(_UNCOMPRESSED):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


routes = [
    Route("/favicon.ico", favicon, methods=["GET"]),
]
