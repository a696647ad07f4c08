"""`/v1/flow-runs` and `/v1/flows`: Render's flows API over runs of flow-kind tasks."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api import flows_serialize as shapes
from app.api.auth import caller_of, workspace_of
from app.api.body import ENVELOPE_BYTES, read_json_body
from app.api.params import int_param, list_param
from app.api.rate_limits import enforce, rate_limits_of
from app.api.responses import JSONResponse
from app.api.serialize import with_cursor
from app.api.state import app_state, service_of
from app.api.task_runs import parse_create, parse_statuses
from core.domain import RunFilter, RunStatus
from core.errors import InvalidRequest
from scheduler.flows.service import FlowService, filter_id
from scheduler.runs.catalog import TaskFilter

_PAUSED = "paused"
MAX_SEQ = 2**31 - 1  # the column's range on PostgreSQL


def _flows(request: Request) -> FlowService:
    return FlowService(service_of(request), app_state(request).runtime.transitions.writer)


async def start_flow_run(request: Request) -> Response:
    caller = await caller_of(request)
    enforce(
        rate_limits_of(request).task_runs,
        caller.rate_key,
        "task runs started with this key",
        "CONVEYOR_RATE_LIMITS__TASK_RUNS_PER_SECOND",
    )
    limit = app_state(request).runtime.settings.limits.max_input_bytes + ENVELOPE_BYTES
    body = await read_json_body(request, limit)
    if isinstance(body, dict) and "flow" in body:
        body = {**body, "task": body.pop("flow")}
    elif isinstance(body, dict):
        raise InvalidRequest("'flow' must be a non-empty string like 'workflow/flow'")
    flow_ref, flow_input, key = parse_create(body)
    view = await _flows(request).start(caller.workspace_id, flow_ref, flow_input, key)
    return JSONResponse(shapes.flow_run(view), status_code=202)


async def list_flow_runs(request: Request) -> Response:
    workspace = await workspace_of(request)
    limit = int_param(request, "limit", default=20, low=1, high=100)
    asked = [s.lower() for s in list_param(request, "status")]
    paused = _PAUSED in asked
    statuses = parse_statuses([s for s in asked if s != _PAUSED])
    # the flow statuses to show: the lifecycle's (aliases resolved), and paused
    wanted = {s.value for s in statuses} | ({_PAUSED} if paused else set())
    if paused and RunStatus.PENDING not in statuses:
        statuses = (*statuses, RunStatus.PENDING)
    run_filter = RunFilter(
        status=statuses,
        task_slugs=tuple(list_param(request, "flowSlug")),
        task_ids=tuple(filter_id(f, "flw", "tsk") for f in list_param(request, "flowId")),
        workflow_ids=tuple(list_param(request, "workflowId")),
        version_ids=tuple(list_param(request, "workflowVersionId")),
    )
    page = await _flows(request).list_runs(
        workspace, run_filter, cursor=request.query_params.get("cursor") or None, limit=limit
    )
    views = page.items
    if wanted:  # a paused run is pending to the run lifecycle: tell them apart here
        views = [v for v in views if v.status in wanted]
    return JSONResponse([with_cursor("flowRun", shapes.flow_run(v)) for v in views])


async def get_flow_run(request: Request) -> Response:
    workspace = await workspace_of(request)
    view = await _flows(request).get(workspace, request.path_params["flowRunId"])
    return JSONResponse(shapes.flow_run_details(view))


async def cancel_flow_run(request: Request) -> Response:
    workspace = await workspace_of(request)
    await _flows(request).cancel(workspace, request.path_params["flowRunId"])
    return Response(status_code=204)


async def rerun_flow_run(request: Request) -> Response:
    workspace = await workspace_of(request)
    view = await _flows(request).rerun(workspace, request.path_params["flowRunId"])
    return JSONResponse(shapes.flow_run(view), status_code=202)


async def list_steps(request: Request) -> Response:
    workspace = await workspace_of(request)
    limit = int_param(request, "limit", default=20, low=1, high=100)
    after = int_param(request, "cursor", default=0, low=0, high=MAX_SEQ)
    steps = await _flows(request).steps(workspace, request.path_params["flowRunId"])
    shown = [s for s in steps if s.seq > after][:limit]
    return JSONResponse(
        [{"step": shapes.step(s), "cursor": str(s.seq)} for s in shown],
    )


async def get_step(request: Request) -> Response:
    workspace = await workspace_of(request)
    raw = request.path_params["seq"]
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_SEQ:
        raise InvalidRequest(f"seq must be an integer from 1 to {MAX_SEQ}, got {raw!r}")
    step = await _flows(request).step(workspace, request.path_params["flowRunId"], int(raw))
    return JSONResponse(shapes.step_details(step))


async def list_flows(request: Request) -> Response:
    workspace = await workspace_of(request)
    limit = int_param(request, "limit", default=20, low=1, high=100)
    task_filter = TaskFilter(
        task_slugs=tuple(list_param(request, "flowSlug")),
        workflow_ids=tuple(list_param(request, "workflowId")),
        version_ids=tuple(list_param(request, "workflowVersionId")),
    )
    page = await _flows(request).flows(
        workspace, task_filter, cursor=request.query_params.get("cursor") or None, limit=limit
    )
    return JSONResponse([with_cursor("flow", shapes.flow(f)) for f in page.items])


async def get_flow(request: Request) -> Response:
    workspace = await workspace_of(request)
    info = await _flows(request).flow(workspace, request.path_params["flowId"])
    return JSONResponse(shapes.flow(info))


routes = [
    Route("/v1/flow-runs", start_flow_run, methods=["POST"]),
    Route("/v1/flow-runs", list_flow_runs, methods=["GET"]),
    Route("/v1/flow-runs/{flowRunId}", get_flow_run, methods=["GET"]),
    Route("/v1/flow-runs/{flowRunId}", cancel_flow_run, methods=["DELETE"]),
    Route("/v1/flow-runs/{flowRunId}/rerun", rerun_flow_run, methods=["POST"]),
    Route("/v1/flow-runs/{flowRunId}/steps", list_steps, methods=["GET"]),
    Route("/v1/flow-runs/{flowRunId}/steps/{seq}", get_step, methods=["GET"]),
    Route("/v1/flows", list_flows, methods=["GET"]),
    Route("/v1/flows/{flowId}", get_flow, methods=["GET"]),
]
