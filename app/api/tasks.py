"""`/v1/tasks`: the tasks of each workflow's active version (or of the versions asked for)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api import serialize
from app.api.auth import workspace_of
from app.api.params import int_param, list_param
from app.api.responses import JSONResponse
from app.api.state import service_of
from scheduler.runs.catalog import TaskFilter


async def list_tasks(request: Request) -> Response:
    workspace = await workspace_of(request)
    limit = int_param(request, "limit", default=20, low=1, high=100)
    task_filter = TaskFilter(
        task_slugs=tuple(list_param(request, "taskSlug")),
        workflow_ids=tuple(list_param(request, "workflowId")),
        version_ids=tuple(list_param(request, "workflowVersionId")),
    )
    page = await service_of(request).list_tasks(
        workspace,
        workflow_id=None,
        cursor=request.query_params.get("cursor") or None,
        limit=limit,
        task_filter=task_filter,
    )
    return JSONResponse([serialize.with_cursor("task", serialize.task(t)) for t in page.items])


async def get_task(request: Request) -> Response:
    workspace = await workspace_of(request)
    info = await service_of(request).get_task(workspace, request.path_params["task_ref"])
    return JSONResponse(serialize.task(info))


routes = [
    Route("/v1/tasks", list_tasks, methods=["GET"]),
    Route("/v1/tasks/{task_ref:path}", get_task, methods=["GET"]),
]
