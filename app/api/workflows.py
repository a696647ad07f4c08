"""`/v1/workflows` (listing) and `/v1/workflowversions`, with Render's filters and pages."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api import serialize
from app.api.auth import workspace_of
from app.api.params import int_param, list_param
from app.api.responses import JSONResponse
from app.api.state import service_of
from core.domain import Page, VersionInfo
from scheduler.runs.catalog import VersionFilter, WorkflowFilter


def _page(request: Request) -> tuple[str | None, int]:
    cursor = request.query_params.get("cursor") or None
    return cursor, int_param(request, "limit", default=20, low=1, high=100)


async def list_workflows(request: Request) -> Response:
    workspace = await workspace_of(request)
    cursor, limit = _page(request)
    # `ownerId` and `environmentId` are ignored: a key sees one workspace, which has no
    # environments, and code written for Render passes Render's ids there.
    workflow_filter = WorkflowFilter(
        names=tuple(list_param(request, "name")),
        # Render's generated client spells it `workflowID`.
        workflow_ids=tuple(list_param(request, "workflowID", "workflowId")),
    )
    page = await service_of(request).find_workflows(
        workspace, workflow_filter, cursor=cursor, limit=limit
    )
    return JSONResponse(
        [serialize.with_cursor("workflow", serialize.workflow(w, workspace)) for w in page.items]
    )


def versions_json(page: Page[VersionInfo]) -> list[serialize.Obj]:
    return [
        serialize.with_cursor("workflowVersion", serialize.workflow_version(v)) for v in page.items
    ]


async def list_versions(request: Request) -> Response:
    workspace = await workspace_of(request)
    cursor, limit = _page(request)
    version_filter = VersionFilter(
        workflow_ids=tuple(list_param(request, "workflowID", "workflowId")),
        version_ids=tuple(list_param(request, "workflowVersionId")),
    )
    page = await service_of(request).find_versions(
        workspace, version_filter, cursor=cursor, limit=limit
    )
    return JSONResponse(versions_json(page))


async def get_version(request: Request) -> Response:
    workspace = await workspace_of(request)
    version = await service_of(request).get_version(workspace, request.path_params["version_id"])
    return JSONResponse(serialize.workflow_version(version))


routes = [
    Route("/v1/workflows", list_workflows, methods=["GET"]),
    Route("/v1/workflowversions", list_versions, methods=["GET"]),
    Route("/v1/workflowversions/{version_id}", get_version, methods=["GET"]),
]
