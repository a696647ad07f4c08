"""Workflows, their versions and builds: status, commit, which version is active, build logs."""

from __future__ import annotations

from collections import defaultdict

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.state import app_state, service_of
from app.builds import build_services_of
from app.dashboard.handlers import page
from app.dashboard.rendering import render
from app.dashboard.visitor import Visitor
from builder.records import BuildInfo, BuildStatus
from core.blobs.base import BlobNotFound
from core.domain import VersionInfo

# the page shows this much of a build log; the API streams all of it
LOG_TAIL_BYTES = 256 * 1024


async def workflows_page(request: Request, visitor: Visitor) -> Response:
    service = service_of(request)
    workflows = await service.list_workflows(visitor.workspace)
    versions: dict[str, list[VersionInfo]] = defaultdict(list)
    for version in await service.list_versions(visitor.workspace, None):
        versions[version.workflow_id].append(version)
    builds: dict[str, list[BuildInfo]] = defaultdict(list)
    for build in await build_services_of(request).catalog.list_builds(visitor.workspace, None):
        builds[build.workflow_id].append(build)
    commits = {b.version_id: b.commit_sha for items in builds.values() for b in items}
    context = {"workflows": workflows, "versions": versions, "builds": builds, "commits": commits}
    return render(request, visitor, "workflows.html", context)


async def build_page(request: Request, visitor: Visitor) -> Response:
    build, log_key = await build_services_of(request).catalog.get_build(
        visitor.workspace, request.path_params["build_id"]
    )
    blobs = app_state(request).runtime.store.blobs
    try:
        log = await blobs.read_range(log_key, 0, LOG_TAIL_BYTES)
    except BlobNotFound:
        log = b""
    live = build.status in (BuildStatus.QUEUED, BuildStatus.RUNNING)
    context = {
        "build": build,
        "log": log.decode(errors="replace"),
        "live": live,
        "truncated": len(log) >= LOG_TAIL_BYTES,
    }
    return render(request, visitor, "build.html", context)


routes = [
    Route("/workflows", page(workflows_page), methods=["GET"]),
    Route("/builds/{build_id}", page(build_page), methods=["GET"]),
]
