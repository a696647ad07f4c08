"""`/v1/task-runs/events`: Server-Sent Events, one `task.completed` per listed run as it ends."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.api import serialize
from app.api.auth import workspace_of
from app.api.params import list_param
from app.api.responses import dumps
from app.api.sse import PING, with_pings
from app.api.state import app_state, service_of
from core.domain import RunInfo
from core.errors import InvalidRequest

MAX_IDS = 100


def completed_event(run: RunInfo) -> str:
    # json.dumps never emits a raw newline, so `data` is always one line.
    return f"event: task.completed\ndata: {dumps(serialize.task_run_details(run))}\n\n"


async def event_stream(
    runs: AsyncIterator[RunInfo], run_ids: list[str], ping_seconds: float
) -> AsyncIterator[str]:
    """Each run's event once, `: ping` while waiting; ends when every listed run was sent."""
    remaining = set(run_ids)
    if not remaining:
        return
    stream = with_pings(runs, ping_seconds)
    try:
        async for run in stream:
            if run is None:
                yield PING
            elif run.id in remaining:
                remaining.discard(run.id)
                yield completed_event(run)
                if not remaining:
                    return
    finally:
        await stream.aclose()


async def stream_events(request: Request) -> Response:
    workspace = await workspace_of(request)
    run_ids = list_param(request, "taskRunIds", "taskRunId")
    if not run_ids:
        raise InvalidRequest("taskRunIds is required (repeat it or give a comma list)")
    if len(run_ids) > MAX_IDS:
        raise InvalidRequest(f"at most {MAX_IDS} taskRunIds per stream")
    service = service_of(request)
    # Unknown ids must be a 404 before the stream (and its 200) starts.
    await service.run_statuses(workspace, run_ids)
    stream = event_stream(
        service.watch_runs(workspace, run_ids), run_ids, app_state(request).sse_ping_seconds
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


routes = [Route("/v1/task-runs/events", stream_events, methods=["GET"])]
