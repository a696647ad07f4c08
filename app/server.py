"""The ASGI application: REST v1, SSE and the OpenAPI document over one Runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.api import (
    accounts,
    events,
    flows,
    github_installations,
    instance_relay,
    logs,
    metrics,
    openapi,
    schedules,
    task_runs,
    tasks,
    usage,
    workflow_resources,
    workflows,
)
from app.api.access_log import AccessLogMiddleware
from app.api.errors import EXCEPTION_HANDLERS, CatchAllMiddleware
from app.api.request_guard import GuardPolicy, RequestGuardMiddleware
from app.api.responses import JSONResponse
from app.api.routing import merge_routes
from app.api.state import AppState
from app.api.url_guard import NulInUrlMiddleware
from app.dashboard import dashboard_routes
from app.dashboard.handlers import not_found_or_error
from app.dashboard.serving import DashboardGZip
from app.github import webhook

if TYPE_CHECKING:
    from scheduler.runtime import Runtime

SSE_PING_SECONDS = 25.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def api_routes() -> list[BaseRoute]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        *openapi.routes,
        # Before task_runs: `/v1/task-runs/events` would otherwise match `{run_id}`.
        *events.routes,
        *task_runs.routes,
        *flows.routes,
        *tasks.routes,
        *workflows.routes,
        *workflow_resources.routes,
        *webhook.routes,
        *github_installations.routes,
        *logs.routes,
        *usage.routes,
        *metrics.routes,
        *schedules.routes,
        *instance_relay.routes,
        *accounts.routes,
    ]


def create_app(
    runtime: Runtime,
    *,
    anonymous_workspace: str | None = None,
    sse_ping_seconds: float = SSE_PING_SECONDS,
) -> Starlette:
    """The API over `runtime`; with `anonymous_workspace`, requests with no token act as it.

    Serving without keys is what `conveyor dev` does, so it also turns the Host check on.
    """
    routes = merge_routes([*api_routes(), *dashboard_routes()])
    guard = GuardPolicy(runtime.settings.security, routes, dev=anonymous_workspace is not None)
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(AccessLogMiddleware),
            Middleware(DashboardGZip),
            Middleware(CatchAllMiddleware),
            Middleware(RequestGuardMiddleware, policy=guard),
            Middleware(NulInUrlMiddleware),
        ],
        # a browser that asks for an unknown page gets one; API clients get JSON as before
        exception_handlers={**EXCEPTION_HANDLERS, HTTPException: not_found_or_error},
    )
    app.state.conveyor = AppState(runtime, anonymous_workspace, sse_ping_seconds)
    return app
