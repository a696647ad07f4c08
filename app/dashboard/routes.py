"""Every route of the dashboard, for `create_app` to mount next to the API."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from app.dashboard import live
from app.dashboard.pages import keys, run_detail, runs, sign_in, tasks, usage, workflows

STATIC = Path(__file__).parent / "static"


def dashboard_routes() -> list[BaseRoute]:
    return [
        *sign_in.routes,
        *runs.routes,
        *run_detail.routes,
        *tasks.routes,
        *workflows.routes,
        *usage.routes,
        *keys.routes,
        *live.routes,
        Mount("/dashboard/static", StaticFiles(directory=STATIC), name="dashboard-static"),
    ]
