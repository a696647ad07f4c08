"""Workflows, their versions and builds: where they come from, the last build, deploying one,
and a build's log followed live."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from app.api.accounts import audit_log
from app.api.auth import ANONYMOUS
from app.api.state import app_state, service_of
from app.builds import build_services_of
from app.dashboard.forms import read_form
from app.dashboard.handlers import data, page
from app.dashboard.live import STREAM_HEADERS
from app.dashboard.rendering import render
from app.dashboard.visitor import Visitor
from builder.records import BuildInfo, BuildStatus
from core.audit import Actor
from core.blobs.base import BlobNotFound
from core.domain import VersionInfo

logger = logging.getLogger("conveyor.dashboard")

# the page shows this much of a build log; the whole of it is one link away
LOG_TAIL_BYTES = 256 * 1024
FORM_LIMIT = 16 * 1024
_SHA = re.compile(r"^[0-9a-f]{40}\Z")
_FINISHED = (BuildStatus.SUCCEEDED, BuildStatus.FAILED)
_FOLLOW_SECONDS = 0.25


async def workflows_page(request: Request, visitor: Visitor) -> Response:
    return await _workflows(request, visitor)


async def _workflows(
    request: Request,
    visitor: Visitor,
    *,
    problems: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The page; `problems` and `typed` by workflow id (a refused deploy form, shown back)."""
    service = service_of(request)
    workflows = await service.list_workflows(visitor.workspace)
    versions: dict[str, list[VersionInfo]] = defaultdict(list)
    for version in await service.list_versions(visitor.workspace, None):
        versions[version.workflow_id].append(version)
    builds: dict[str, list[BuildInfo]] = defaultdict(list)
    for build in await build_services_of(request).catalog.list_builds(visitor.workspace, None):
        builds[build.workflow_id].append(build)
    commits = {b.version_id: b.commit_sha for items in builds.values() for b in items}
    context = {
        "workflows": workflows,
        "versions": versions,
        "builds": builds,
        "commits": commits,
        "problems": problems or {},
        "typed": typed or {},
    }
    return render(request, visitor, "workflows.html", context, status_code=status_code)


def _actor(visitor: Visitor) -> Actor:
    key_id = visitor.session.key_id
    return Actor(f"key:{key_id}") if key_id else Actor(ANONYMOUS)


async def deploy(request: Request, visitor: Visitor) -> Response:
    """Build a commit of the workflow's repository (its branch's head when none is given)."""
    form = await read_form(request, FORM_LIMIT)
    visitor.check_csrf(form.get("csrf_token"))
    commit = form.get("commit").strip().lower() or None
    services = build_services_of(request)
    record = await services.catalog.get(visitor.workspace, request.path_params["workflow_id"])
    if commit is not None and not _SHA.match(commit):
        message = "the commit must be a full 40-character sha, or empty for the branch's head"
        return await _workflows(
            request,
            visitor,
            problems={record.id: message},
            typed={record.id: form.get("commit")},
            status_code=400,
        )
    build = await services.pipeline.deploy(
        visitor.workspace, record.id, commit_sha=commit, trigger="dashboard"
    )
    details = {"slug": record.slug, "build": build.id, "commit": build.commit_sha}
    details["via"] = "dashboard"
    await audit_log(request).record(
        visitor.workspace, _actor(visitor), "workflow.deployed", record.id, details
    )
    logger.info("dashboard deploy of %s: build %s", record.slug, build.id)
    return RedirectResponse(f"/builds/{build.id}", status_code=303)


async def build_page(request: Request, visitor: Visitor) -> Response:
    build, log_key = await build_services_of(request).catalog.get_build(
        visitor.workspace, request.path_params["build_id"]
    )
    blobs = app_state(request).runtime.store.blobs
    try:
        log = await blobs.read_range(log_key, 0, LOG_TAIL_BYTES)
    except BlobNotFound:
        log = b""
    context = {
        "build": build,
        "log": log.decode(errors="replace"),
        "live": build.status not in _FINISHED,
        "truncated": len(log) >= LOG_TAIL_BYTES,
    }
    template = "build_live.html" if request.query_params.get("part") == "live" else "build.html"
    return render(request, visitor, template, context)


async def build_log(request: Request, visitor: Visitor) -> Response:
    """A build's log from the start, then what is appended, until the build ends."""
    services = build_services_of(request)
    build_id = request.path_params["build_id"]
    build, key = await services.catalog.get_build(visitor.workspace, build_id)
    blobs = app_state(request).runtime.store.blobs

    async def chunks() -> AsyncIterator[bytes]:
        offset = 0
        while True:
            status = (await services.pipeline.get(build.id)).status
            try:
                data = await blobs.read_range(key, offset, 1 << 20)
            except BlobNotFound:
                data = b""
            offset += len(data)
            if data:
                yield data
            elif status in _FINISHED:
                return
            else:
                await asyncio.sleep(_FOLLOW_SECONDS)

    media_type = "text/plain; charset=utf-8"
    return StreamingResponse(chunks(), media_type=media_type, headers=STREAM_HEADERS)


routes = [
    Route("/workflows", page(workflows_page), methods=["GET"]),
    Route("/workflows/{workflow_id}/deploy", page(deploy), methods=["POST"]),
    Route("/builds/{build_id}", page(build_page), methods=["GET"]),
    Route("/dashboard/builds/{build_id}/log", data(build_log), methods=["GET"]),
]
