"""Live data for the pages' scripts: run changes as Server-Sent Events, and log tails.

Each `run` event carries what a row shows (status, attempts, times), so pages patch the rows
they have without asking for more; only rows they do not have yet are fetched, as fragments.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.api.state import app_state, service_of
from app.dashboard.changes import ChangeLog, Followed, change_log
from app.dashboard.flow_runs import paused_until
from app.dashboard.handlers import data
from app.dashboard.present import epoch_ms
from app.dashboard.visitor import Visitor
from core.domain import RunInfo
from core.errors import InvalidRequest
from scheduler.runs.service import RunService

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
BATCH = 200  # changes read from the database in one query
PING = ": ping\n\n"


def run_payload(run: RunInfo) -> dict[str, object]:
    return {
        "id": run.id,
        "status": run.status.value,
        "waiting": run.waiting,
        "rootId": run.root_id,
        "parentId": run.parent_id or "",
        "taskSlug": run.task_slug,
        "attempts": len(run.attempts),
        "createdAt": epoch_ms(run.created_at),
        "startedAt": epoch_ms(run.started_at),
        "completedAt": epoch_ms(run.completed_at),
        "wakesAt": epoch_ms(paused_until(run)),  # a flow run asleep: paused until then
    }


def change_event(run: RunInfo, cursor: str) -> str:
    data = json.dumps(run_payload(run), separators=(",", ":"))
    return f"id: {cursor}\nevent: run\ndata: {data}\n\n"


async def _batch(queue: asyncio.Queue[Followed], ping_seconds: float) -> list[Followed]:
    """The next changes (waiting up to `ping_seconds` for the first), at most BATCH."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(ping_seconds):
            first = await queue.get()
            batch = [first]
            while len(batch) < BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            return batch
    return []


async def change_stream(
    log: ChangeLog,
    service: RunService,
    workspace: str,
    root_id: str | None,
    since: str | None,
    ping_seconds: float,
) -> AsyncGenerator[str, None]:
    """`run` events for the changes after `since` (a `stale` event if they are not known), then
    for each new change; `: ping` when idle. Only the workspace's runs (of one tree with
    `root_id`)."""
    # Browsers reconnect by themselves; a short retry keeps a restarted dev server seamless.
    yield "retry: 2000\n\n"
    async with log.follow() as queue:
        missed = log.after(since) if since else []
        if missed is None:
            yield f"id: {log.cursor}\nevent: stale\ndata: {{}}\n\n"
            missed = []
        last = 0  # the newest change handled: what the queue repeats of `missed` is skipped
        pending: list[Followed] = list(missed)
        while True:
            if not pending:
                pending = await _batch(queue, ping_seconds)
                if not pending:
                    yield PING
                    continue
            batch = [(n, c) for n, c in pending if n > last]
            pending = []
            if not batch:
                continue
            last = batch[-1][0]
            newest: dict[str, int] = {}
            for number, change in batch:
                if change is None:  # this reader fell behind: changes were dropped
                    newest.clear()
                    yield f"id: {log.epoch}.{number}\nevent: stale\ndata: {{}}\n\n"
                elif root_id is None or change.root_id == root_id:
                    newest[change.run_id] = number
            if not newest:
                continue
            for run in sorted(
                await service.run_summaries(workspace, list(newest)),
                key=lambda r: newest[r.id],
            ):
                yield change_event(run, f"{log.epoch}.{newest[run.id]}")


async def events(request: Request, visitor: Visitor) -> Response:
    root_id = request.query_params.get("root") or None
    since = request.headers.get("last-event-id") or request.query_params.get("since") or None
    stream = change_stream(
        change_log(request),
        service_of(request),
        visitor.workspace,
        root_id,
        since,
        app_state(request).sse_ping_seconds,
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)


async def log_tail(request: Request, visitor: Visitor) -> Response:
    """The attempt's log from `offset` (the start by default), then each new write, until the
    attempt ends."""
    raw, since = request.query_params.get("attempt", ""), request.query_params.get("offset", "0")
    if (raw and not raw.isdigit()) or not since.isdigit():
        raise InvalidRequest(f"attempt and offset must be numbers, got {raw!r} and {since!r}")
    service = service_of(request)
    run_id = request.path_params["run_id"]
    # Read once first so an unknown run or attempt is a 404 rather than a broken stream.
    first = await service.read_log(visitor.workspace, run_id, int(raw) if raw else None, 0)
    body = service.follow_log(visitor.workspace, run_id, first.attempt, int(since))
    headers = {**STREAM_HEADERS, "X-Conveyor-Attempt": str(first.attempt)}
    return StreamingResponse(body, media_type="text/plain; charset=utf-8", headers=headers)


routes = [
    Route("/dashboard/events", data(events), methods=["GET"]),
    Route("/dashboard/runs/{run_id}/log", data(log_tail), methods=["GET"]),
]
