"""The queue, live: the slots in use, pending runs in admission order and why each waits."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.state import service_of
from app.dashboard.changes import change_log
from app.dashboard.handlers import page
from app.dashboard.rendering import render
from app.dashboard.visitor import Visitor
from scheduler.runs.queue import QueuedRun, WaitReason

SHOWN = 100  # runs listed per table


def reason_text(queued: QueuedRun, free: int) -> str:
    """Why this run has not started yet, in a sentence."""
    if queued.reason is WaitReason.NEXT:
        return "Starts at the next admission: a slot is free."
    if queued.reason is WaitReason.TASK_LIMIT:
        verb = "is" if queued.busy == 1 else "are"
        return (
            f"Task limit: {queued.run.task_slug} runs at most {queued.concurrency} at once, "
            f"and {queued.busy} {verb} running."
        )
    if queued.reason is WaitReason.WORKSPACE_LIMIT:
        if free:
            slots = "the free slot goes" if free == 1 else f"the {free} free slots go"
            return f"Workspace limit: {slots} to runs ahead of it."
        return "Workspace limit: every slot is in use."
    return "Retry backoff."


async def queue_page(request: Request, visitor: Visitor) -> Response:
    cursor = change_log(request).cursor  # before reading: nothing after it is missed
    view = await service_of(request).queue(visitor.workspace, SHOWN)
    context = {
        "view": view,
        "reason_text": reason_text,
        "live_cursor": cursor,
        "used_percent": round(100 * view.active / view.limit) if view.limit else 0,
    }
    template = "queue_live.html" if request.query_params.get("part") == "live" else "queue.html"
    return render(request, visitor, template, context)


routes = [Route("/queue", page(queue_page), methods=["GET"])]
