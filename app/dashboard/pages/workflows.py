"""Workflows and their versions: status, which version is active, the tasks each registered."""

from __future__ import annotations

from collections import defaultdict

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.state import service_of
from app.dashboard.handlers import page
from app.dashboard.rendering import render
from app.dashboard.visitor import Visitor
from core.domain import VersionInfo


async def workflows_page(request: Request, visitor: Visitor) -> Response:
    service = service_of(request)
    workflows = await service.list_workflows(visitor.workspace)
    versions: dict[str, list[VersionInfo]] = defaultdict(list)
    for version in await service.list_versions(visitor.workspace, None):
        versions[version.workflow_id].append(version)
    context = {"workflows": workflows, "versions": versions}
    return render(request, visitor, "workflows.html", context)


routes = [Route("/workflows", page(workflows_page), methods=["GET"])]
