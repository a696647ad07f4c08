"""Every route of the dashboard, for `create_app` to mount next to the API."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount

from app.dashboard import live, serving
from app.dashboard.pages import (
    flow_actions,
    keys,
    queue,
    run_actions,
    run_detail,
    runs,
    sign_in,
    tasks,
    usage,
    workflows,
)


def dashboard_routes() -> list[BaseRoute]:
    return [
        *sign_in.routes,
        *runs.routes,
        *run_detail.routes,
        *run_actions.routes,
        *flow_actions.routes,
        *tasks.routes,
        *workflows.routes,
        *queue.routes,
        *usage.routes,
        *keys.routes,
        *live.routes,
        *serving.routes,
        Mount(
            serving.STATIC_PREFIX,
            serving.CachedStaticFiles(directory=serving.STATIC),
            name="dashboard-static",
        ),
    ]
