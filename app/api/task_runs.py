"""`/v1/task-runs`: start, read (optionally waiting), list and cancel runs."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api import serialize
from app.api.auth import caller_of, workspace_of
from app.api.body import ENVELOPE_BYTES, read_json_body
from app.api.json_input import check_text
from app.api.params import bool_param, float_param, int_param, list_param, single_param
from app.api.rate_limits import enforce, rate_limits_of
from app.api.responses import JSONResponse
from app.api.state import app_state, service_of
from core.domain import RunFilter, RunStatus
from core.errors import InvalidRequest

# Render's legacy synonym, still sent by old clients.
_STATUS_ALIASES = {"completed": RunStatus.SUCCEEDED}
# `workflow/task:version` at its longest (slug 100, name 200, version id 40), and the column
MAX_TASK_REF = 400
MAX_IDEMPOTENCY_KEY = 200


def parse_create(body: Any) -> tuple[str, Any, str | None]:
    """`(task, input, idempotencyKey)` from a POST body, or InvalidRequest."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    task = body.get("task")
    if not isinstance(task, str) or not task.strip():
        raise InvalidRequest("'task' must be a non-empty string like 'workflow/task'")
    run_input = body.get("input", [])
    if not isinstance(run_input, list | dict):
        raise InvalidRequest("'input' must be a JSON array (positional) or object (keywords)")
    key = body.get("idempotencyKey")
    if key is not None and (not isinstance(key, str) or not key):
        raise InvalidRequest("'idempotencyKey' must be a non-empty string")
    check_text(task, "'task'", MAX_TASK_REF)
    if key is not None:
        check_text(key, "'idempotencyKey'", MAX_IDEMPOTENCY_KEY)
    return task.strip(), run_input, key


def parse_statuses(values: list[str]) -> tuple[RunStatus, ...]:
    statuses: list[RunStatus] = []
    for value in values:
        lowered = value.lower()
        try:
            statuses.append(_STATUS_ALIASES.get(lowered) or RunStatus(lowered))
        except ValueError:
            allowed = ", ".join(s.value for s in RunStatus)
            raise InvalidRequest(f"unknown status {value!r}; expected one of {allowed}") from None
    return tuple(dict.fromkeys(statuses))


def parse_filter(request: Request) -> RunFilter:
    return RunFilter(
        status=parse_statuses(list_param(request, "status")),
        task_slugs=tuple(list_param(request, "taskSlug")),
        workflow_ids=tuple(list_param(request, "workflowId")),
        version_ids=tuple(list_param(request, "workflowVersionId")),
        root_ids=tuple(list_param(request, "rootTaskRunId")),
        parent_id=single_param(request, "parentTaskRunId"),
        roots_only=bool_param(request, "rootsOnly"),
        children_only=bool_param(request, "childrenOnly"),
    )


async def create_run(request: Request) -> Response:
    caller = await caller_of(request)
    workspace = caller.workspace_id
    enforce(
        rate_limits_of(request).task_runs,
        caller.rate_key,
        "task runs started with this key",
        "CONVEYOR_RATE_LIMITS__TASK_RUNS_PER_SECOND",
    )
    limit = app_state(request).runtime.settings.limits.max_input_bytes + ENVELOPE_BYTES
    task, run_input, key = parse_create(await read_json_body(request, limit))
    run = await service_of(request).create_run(workspace, task, run_input, key)
    return JSONResponse(serialize.task_run(run), status_code=202)


async def get_run(request: Request) -> Response:
    workspace = await workspace_of(request)
    max_wait = app_state(request).runtime.settings.limits.api_wait_max_seconds
    wait = float_param(request, "wait", default=0.0, low=0.0, high=max_wait)
    run_id = request.path_params["run_id"]
    service = service_of(request)
    if wait:
        run = await service.wait_run(workspace, run_id, wait)
    else:
        run = await service.get_run(workspace, run_id)
    return JSONResponse(serialize.task_run_details(run))


async def list_runs(request: Request) -> Response:
    workspace = await workspace_of(request)
    limit = int_param(request, "limit", default=20, low=1, high=100)
    cursor = request.query_params.get("cursor") or None
    page = await service_of(request).list_runs(
        workspace, parse_filter(request), cursor=cursor, limit=limit
    )
    items = [serialize.with_cursor("taskRun", serialize.task_run(r)) for r in page.items]
    return JSONResponse(items)


async def cancel_run(request: Request) -> Response:
    workspace = await workspace_of(request)
    await service_of(request).cancel_run(workspace, request.path_params["run_id"])
    return Response(status_code=204)


routes = [
    Route("/v1/task-runs", create_run, methods=["POST"]),
    Route("/v1/task-runs", list_runs, methods=["GET"]),
    Route("/v1/task-runs/{run_id}", get_run, methods=["GET"]),
    Route("/v1/task-runs/{run_id}", cancel_run, methods=["DELETE"]),
]
