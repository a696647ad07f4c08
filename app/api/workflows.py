"""`/v1/workflows` and `/v1/workflowversions`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api import serialize
from app.api.auth import workspace_of
from app.api.params import single_param
from app.api.responses import JSONResponse
from app.api.state import service_of


async def list_workflows(request: Request) -> Response:
    workspace = await workspace_of(request)
    items = await service_of(request).list_workflows(workspace)
    return JSONResponse(
        [serialize.with_cursor("workflow", serialize.workflow(w, workspace)) for w in items]
    )


async def list_versions(request: Request) -> Response:
    workspace = await workspace_of(request)
    # Render's generated client spells it `workflowID` here.
    workflow_id = single_param(request, "workflowId", "workflowID")
    items = await service_of(request).list_versions(workspace, workflow_id)
    return JSONResponse(
        [serialize.with_cursor("workflowVersion", serialize.workflow_version(v)) for v in items]
    )


routes = [
    Route("/v1/workflows", list_workflows, methods=["GET"]),
    Route("/v1/workflowversions", list_versions, methods=["GET"]),
]
