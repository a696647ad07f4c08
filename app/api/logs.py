"""`/v1/logs`: an attempt's captured stdout and stderr, whole or followed live."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.api.auth import workspace_of
from app.api.params import bool_param, optional_int_param, single_param
from app.api.state import service_of
from core.domain import LogChunk
from core.errors import InvalidRequest
from scheduler.runs.service import RunService

MEDIA_TYPE = "text/plain; charset=utf-8"


async def _rest_of_log(
    service: RunService, workspace: str, run_id: str, first: LogChunk
) -> AsyncIterator[bytes]:
    chunk = first
    while chunk.data:
        yield chunk.data
        chunk = await service.read_log(workspace, run_id, chunk.attempt, chunk.next_offset)


async def get_log(request: Request) -> Response:
    workspace = await workspace_of(request)
    run_id = single_param(request, "taskRun", "taskRunId")
    if run_id is None:
        raise InvalidRequest("taskRun is required")
    attempt = optional_int_param(request, "attempt", low=0, high=1_000_000)
    follow = bool_param(request, "follow")
    service = service_of(request)
    # Read once up front so an unknown run or attempt is a 404, not a broken stream.
    first = await service.read_log(workspace, run_id, attempt, 0)
    headers = {"X-Conveyor-Attempt": str(first.attempt)}
    if follow:
        body = service.follow_log(workspace, run_id, first.attempt)
        return StreamingResponse(body, media_type=MEDIA_TYPE, headers=headers)
    body = _rest_of_log(service, workspace, run_id, first)
    return StreamingResponse(body, media_type=MEDIA_TYPE, headers=headers)


routes = [Route("/v1/logs", get_log, methods=["GET"])]
