"""`/v1/usage`: compute seconds and cost, as the engine reports them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.auth import workspace_of
from app.api.responses import JSONResponse
from app.api.state import service_of


async def get_usage(request: Request) -> Response:
    workspace = await workspace_of(request)
    return JSONResponse(await service_of(request).usage(workspace))


routes = [Route("/v1/usage", get_usage, methods=["GET"])]
