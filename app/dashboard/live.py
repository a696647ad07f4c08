"""Live data for the pages' scripts: run changes as Server-Sent Events, and log tails."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.api.sse import PING, with_pings
from app.api.state import app_state, service_of
from app.dashboard.handlers import data
from app.dashboard.visitor import Visitor
from core.domain import RunInfo
from core.errors import InvalidRequest

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def change_event(run: RunInfo) -> str:
    payload = {
        "id": run.id,
        "status": run.status.value,
        "rootId": run.root_id,
        "parentId": run.parent_id or "",
        "taskSlug": run.task_slug,
        "attempts": len(run.attempts),
    }
    return f"event: run\ndata: {json.dumps(payload)}\n\n"


async def change_stream(
    changes: AsyncIterator[RunInfo], root_id: str | None, ping_seconds: float
) -> AsyncIterator[str]:
    """One `run` event per status change (of one tree with `root_id`), `: ping` when idle."""
    # Browsers reconnect by themselves; a short retry keeps a restarted dev server seamless.
    yield "retry: 2000\n\n"
    stream = with_pings(changes, ping_seconds)
    try:
        async for run in stream:
            if run is None:
                yield PING
            elif root_id is None or run.root_id == root_id:
                yield change_event(run)
    finally:
        await stream.aclose()


async def events(request: Request, visitor: Visitor) -> Response:
    root_id = request.query_params.get("root") or None
    changes = service_of(request).watch_changes(visitor.workspace)
    stream = change_stream(changes, root_id, app_state(request).sse_ping_seconds)
    return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)


async def log_tail(request: Request, visitor: Visitor) -> Response:
    """The attempt's log from the start, then each new write, until the attempt ends."""
    raw = request.query_params.get("attempt", "")
    if raw and not raw.isdigit():
        raise InvalidRequest(f"attempt must be a number, got {raw!r}")
    service = service_of(request)
    run_id = request.path_params["run_id"]
    # Read once first so an unknown run or attempt is a 404 rather than a broken stream.
    first = await service.read_log(visitor.workspace, run_id, int(raw) if raw else None, 0)
    body = service.follow_log(visitor.workspace, run_id, first.attempt)
    headers = {**STREAM_HEADERS, "X-Conveyor-Attempt": str(first.attempt)}
    return StreamingResponse(body, media_type="text/plain; charset=utf-8", headers=headers)


routes = [
    Route("/dashboard/events", data(events), methods=["GET"]),
    Route("/dashboard/runs/{run_id}/log", data(log_tail), methods=["GET"]),
]
