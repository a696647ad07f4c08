"""What a failed flow run's page can do to it: rerun it from its failed step (docs/flows.md)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.api.state import app_state
from app.dashboard.forms import read_form
from app.dashboard.handlers import page
from app.dashboard.visitor import Visitor
from scheduler.flows.rerun import rerun

logger = logging.getLogger("conveyor.dashboard")

FORM_LIMIT = 16 * 1024


async def rerun_from_failed_step(request: Request, visitor: Visitor) -> Response:
    form = await read_form(request, FORM_LIMIT)
    visitor.check_csrf(form.get("csrf_token"))
    run_id = request.path_params["run_id"]
    await rerun(app_state(request).runtime.transitions.writer, visitor.workspace, run_id)
    logger.info("dashboard rerun of flow run %s from its failed step", run_id)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


routes = [
    Route("/runs/{run_id}/flow-rerun", page(rerun_from_failed_step), methods=["POST"]),
]
