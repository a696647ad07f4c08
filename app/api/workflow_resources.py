"""Workflows as resources (create, change, delete, deploy), their versions, builds and logs."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.api import serialize
from app.api.accounts import record_change
from app.api.auth import workspace_of
from app.api.body import read_json_body
from app.api.json_input import check_text
from app.api.params import bool_param, int_param, single_param
from app.api.responses import JSONResponse
from app.api.state import app_state, service_of
from app.api.workflows import versions_json
from app.builds import build_services_of
from builder.catalog import WorkflowChanges, WorkflowRecord
from builder.records import BuildInfo, BuildStatus
from core.errors import InvalidRequest
from scheduler.runs.catalog import VersionFilter

_MAX_BODY = 256 * 1024
_SHA = re.compile(r"^[0-9a-f]{40}\Z")
_FIELDS = {
    "name": "name",
    "slug": "slug",
    "repo": "repo_url",
    "branch": "branch",
    "rootDir": "root_dir",
    "buildCommand": "build_command",
    "startCommand": "start_command",
    "runCommand": "start_command",  # Render's name for it
    "runtime": "runtime",
}
# the columns' sizes (the rest are TEXT)
_MAX_CHARS = {"name": 200, "slug": 100, "branch": 255, "runtime": 20, "repo": 2000}


def workflow_json(record: WorkflowRecord, workspace_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "slug": record.slug,
        "ownerId": workspace_id,
        "createdAt": serialize.timestamp(record.created_at),
        "updatedAt": serialize.timestamp(record.updated_at),
        "runCommand": record.start_command,
        "rootDir": record.root_dir,
        "buildConfig": {
            "buildCommand": record.build_command,
            "repo": record.repo_url or "",
            "runtime": record.runtime,
            "branch": record.branch or "",
            "rootDir": record.root_dir,
        },
        "branch": record.branch or "",
        "autoDeployTrigger": serialize.auto_deploy_trigger(record.repo_url),
        # Names only: values are write-only through the API.
        "envVarKeys": list(record.env_names),
        "region": "oregon",
    }
    if record.active_version_id:
        out["activeVersionId"] = record.active_version_id
    return out


def build_json(build: BuildInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": build.id,
        "workflowId": build.workflow_id,
        "workflowVersionId": build.version_id,
        "status": build.status.value,
        "trigger": build.trigger,
        "commitId": build.commit_sha or "",
        "builder": build.builder,
        "createdAt": serialize.timestamp(build.created_at),
    }
    if build.message:
        out["message"] = build.message
    if build.builder_id:
        # the `conveyor builder` process that ran it (none: the server built it in-process)
        out["builderId"] = build.builder_id
        out["builderName"] = build.builder_name or ""
    if build.attempts > 1:
        out["attempts"] = build.attempts
    if build.started_at:
        out["startedAt"] = serialize.timestamp(build.started_at)
    if build.finished_at:
        out["finishedAt"] = serialize.timestamp(build.finished_at)
    return out


def _changes(body: Any, *, creating: bool) -> WorkflowChanges:
    if not isinstance(body, dict):
        raise InvalidRequest("expected a JSON object")
    known = {*_FIELDS, "envVars"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(unknown)}")
    changes = WorkflowChanges()
    for key, attribute in _FIELDS.items():
        if key in body:
            value = body[key]
            if not isinstance(value, str):
                raise InvalidRequest(f"{key} must be a string")
            if attribute == "start_command" and not value.strip():
                raise InvalidRequest(f"{key} must not be empty")
            setattr(changes, attribute, check_text(value, key, _MAX_CHARS.get(key)))
    changes.env_vars = _env_vars(body.get("envVars", {}))
    if creating and not changes.repo_url:
        raise InvalidRequest("repo is required (a git URL)")
    return changes


def _env_vars(raw: Any) -> dict[str, str | None]:
    """`{"NAME": "value"}` or Render's `[{"key": …, "value": …}]`; null removes (PATCH)."""
    if isinstance(raw, list):
        pairs = {}
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("key"), str):
                raise InvalidRequest("envVars items must be {key, value}")
            pairs[item["key"]] = item.get("value")
        raw = pairs
    if not isinstance(raw, dict):
        raise InvalidRequest("envVars must be an object or a list of {key, value}")
    for name, value in raw.items():
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(f"envVars.{name} must be a string (or null to remove it)")
        if value is not None:
            check_text(value, f"envVars.{name}")
    return dict(raw)


def _what_changed(body: dict[str, Any]) -> dict[str, Any]:
    """For the audit trail: the fields and variable names sent, never a variable's value."""
    env = _env_vars(body.get("envVars", {}))
    return {
        "fields": sorted(set(body) - {"envVars"}),
        "envVarsSet": sorted(k for k, v in env.items() if v is not None),
        "envVarsRemoved": sorted(k for k, v in env.items() if v is None),
    }


async def create_workflow(request: Request) -> Response:
    workspace = await workspace_of(request)
    body = await read_json_body(request, _MAX_BODY)
    changes = _changes(body, creating=True)
    record = await build_services_of(request).catalog.create(workspace, changes)
    details = {"slug": record.slug, **_what_changed(body)}
    await record_change(request, workspace, "workflow.created", record.id, details)
    return JSONResponse(workflow_json(record, workspace), status_code=201)


async def get_workflow(request: Request) -> Response:
    workspace = await workspace_of(request)
    record = await build_services_of(request).catalog.get(
        workspace, request.path_params["workflow_id"]
    )
    return JSONResponse(workflow_json(record, workspace))


async def update_workflow(request: Request) -> Response:
    workspace = await workspace_of(request)
    body = await read_json_body(request, _MAX_BODY)
    changes = _changes(body, creating=False)
    record = await build_services_of(request).catalog.update(
        workspace, request.path_params["workflow_id"], changes
    )
    details = {"slug": record.slug, **_what_changed(body)}
    await record_change(request, workspace, "workflow.updated", record.id, details)
    return JSONResponse(workflow_json(record, workspace))


async def delete_workflow(request: Request) -> Response:
    workspace = await workspace_of(request)
    catalog = build_services_of(request).catalog
    record = await catalog.get(workspace, request.path_params["workflow_id"])
    await catalog.delete(workspace, record.id)
    await record_change(request, workspace, "workflow.deleted", record.id, {"slug": record.slug})
    return Response(status_code=204)


async def deploy_workflow(request: Request) -> Response:
    workspace = await workspace_of(request)
    services = build_services_of(request)
    record = await services.catalog.get(workspace, request.path_params["workflow_id"])
    commit = None
    if int(request.headers.get("content-length") or 0) > 0:
        body = await read_json_body(request, _MAX_BODY)
        commit = body.get("commitId") if isinstance(body, dict) else None
        if commit is not None and (not isinstance(commit, str) or not _SHA.match(commit)):
            raise InvalidRequest("commitId must be a full 40-character commit sha")
    build = await services.pipeline.deploy(workspace, record.id, commit_sha=commit)
    details = {"slug": record.slug, "build": build.id, "commit": build.commit_sha}
    await record_change(request, workspace, "workflow.deployed", record.id, details)
    return JSONResponse(build_json(build), status_code=202)


async def list_workflow_versions(request: Request) -> Response:
    workspace = await workspace_of(request)
    record = await build_services_of(request).catalog.get(
        workspace, request.path_params["workflow_id"]
    )
    page = await service_of(request).find_versions(
        workspace,
        VersionFilter(workflow_ids=(record.id,)),
        cursor=request.query_params.get("cursor") or None,
        limit=int_param(request, "limit", default=20, low=1, high=100),
    )
    return JSONResponse(versions_json(page))


async def list_builds(request: Request) -> Response:
    workspace = await workspace_of(request)
    workflow_id = single_param(request, "workflowId")
    builds = await build_services_of(request).catalog.list_builds(workspace, workflow_id)
    return JSONResponse([{"build": build_json(b), "cursor": b.id} for b in builds])


async def get_build(request: Request) -> Response:
    workspace = await workspace_of(request)
    build, _ = await build_services_of(request).catalog.get_build(
        workspace, request.path_params["build_id"]
    )
    return JSONResponse(build_json(build))


async def build_logs(request: Request) -> Response:
    workspace = await workspace_of(request)
    services = build_services_of(request)
    build, key = await services.catalog.get_build(workspace, request.path_params["build_id"])
    blobs = app_state(request).runtime.store.blobs
    follow = bool_param(request, "follow")

    async def chunks() -> AsyncIterator[bytes]:
        offset = 0
        while True:
            current = await services.pipeline.get(build.id)
            try:
                data = await blobs.read_range(key, offset, 1 << 20)
            except KeyError:
                data = b""
            offset += len(data)
            if data:
                yield data
            finished = current.status in (BuildStatus.SUCCEEDED, BuildStatus.FAILED)
            if not follow or (finished and not data):
                return
            if not data:
                await asyncio.sleep(0.2)

    headers = {"X-Conveyor-Build-Status": build.status.value}
    return StreamingResponse(chunks(), media_type="text/plain; charset=utf-8", headers=headers)


routes = [
    Route("/v1/workflows", create_workflow, methods=["POST"]),
    Route("/v1/workflows/{workflow_id}", get_workflow, methods=["GET"]),
    Route("/v1/workflows/{workflow_id}", update_workflow, methods=["PATCH"]),
    Route("/v1/workflows/{workflow_id}", delete_workflow, methods=["DELETE"]),
    Route("/v1/workflows/{workflow_id}/deploy", deploy_workflow, methods=["POST"]),
    Route("/v1/workflows/{workflow_id}/versions", list_workflow_versions, methods=["GET"]),
    Route("/v1/builds", list_builds, methods=["GET"]),
    Route("/v1/builds/{build_id}", get_build, methods=["GET"]),
    Route("/v1/builds/{build_id}/logs", build_logs, methods=["GET"]),
]
