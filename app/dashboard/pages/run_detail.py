"""One run: its tree, attempts, input, output, error, logs; cancel; the full output as JSON."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.api.responses import JSONResponse
from app.api.state import service_of
from app.dashboard.forms import read_form
from app.dashboard.handlers import page
from app.dashboard.present import pretty_json
from app.dashboard.rendering import render
from app.dashboard.tree import TreeNode, build_tree
from app.dashboard.visitor import Visitor
from core.domain import RunFilter, RunInfo
from core.errors import InvalidRequest, NotFound
from scheduler.runs.service import RunService

logger = logging.getLogger("conveyor.dashboard")

MAX_TREE = 1000  # runs of one tree read for the page; the rest are counted as "more"
LOG_BYTES = 256 * 1024  # log shown in the page; the whole log is one link away
FORM_LIMIT = 16 * 1024


async def read_tree(service: RunService, workspace: str, run: RunInfo) -> tuple[TreeNode, bool]:
    """The run's whole tree from its root, and whether it was cut at MAX_TREE."""
    runs: list[RunInfo] = []
    cursor: str | None = None
    tree_filter = RunFilter(root_ids=(run.root_id,))
    while len(runs) < MAX_TREE:
        found = await service.list_runs(
            workspace, tree_filter, cursor=cursor, limit=min(100, MAX_TREE - len(runs))
        )
        runs.extend(found.items)
        cursor = found.next_cursor
        if cursor is None:
            break
    tree = build_tree(runs, run.root_id) or TreeNode(run)
    return tree, cursor is not None


async def read_log_text(
    service: RunService, workspace: str, run_id: str, attempt: int | None
) -> tuple[str | None, int | None, bool]:
    """(text, attempt number, cut) of an attempt's log; (None, None, False) if there is none."""
    try:
        chunk = await service.read_log(workspace, run_id, attempt, 0)
    except NotFound:
        return None, None, False
    data = bytearray()
    while chunk.data and len(data) < LOG_BYTES:
        data.extend(chunk.data)
        chunk = await service.read_log(workspace, run_id, chunk.attempt, chunk.next_offset)
    cut = len(data) > LOG_BYTES or bool(chunk.data)
    return bytes(data[:LOG_BYTES]).decode("utf-8", errors="replace"), chunk.attempt, cut


def _attempt_param(request: Request) -> int | None:
    raw = request.query_params.get("attempt")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise InvalidRequest(f"attempt must be a number, got {raw!r}")
    return int(raw)


async def run_page(request: Request, visitor: Visitor) -> Response:
    service = service_of(request)
    run = await service.get_run(visitor.workspace, request.path_params["run_id"])
    tree, tree_cut = await read_tree(service, visitor.workspace, run)
    log_text, log_attempt, log_cut = await read_log_text(
        service, visitor.workspace, run.id, _attempt_param(request)
    )
    input_text, input_cut = pretty_json(run.input if run.input is not None else [])
    output_text, output_cut = pretty_json(run.results or [])
    latest = max((a.number for a in run.attempts), default=None)
    context = {
        "run": run,
        "tree": tree,
        "tree_cut": tree_cut,
        "input_text": input_text,
        "input_cut": input_cut,
        "output_text": output_text,
        "output_cut": output_cut,
        "log_text": log_text,
        "log_attempt": log_attempt,
        "log_cut": log_cut,
        "log_live": not run.status.terminal and log_attempt in (None, latest),
        "latest_attempt": latest,
    }
    return render(request, visitor, "run.html", context)


async def cancel(request: Request, visitor: Visitor) -> Response:
    form = await read_form(request, FORM_LIMIT)
    visitor.check_csrf(form.get("csrf_token"))
    run_id = request.path_params["run_id"]
    run = await service_of(request).cancel_run(visitor.workspace, run_id)
    logger.info("dashboard cancel: run %s (%s) is %s", run.id, run.task_slug, run.status.value)
    return RedirectResponse(f"/runs/{run.id}", status_code=303)


def _download(run: RunInfo, what: str, value: object) -> Response:
    disposition = f'attachment; filename="{run.id}-{what}.json"'
    return JSONResponse(value, headers={"Content-Disposition": disposition})


async def output_json(request: Request, visitor: Visitor) -> Response:
    run = await service_of(request).get_run(visitor.workspace, request.path_params["run_id"])
    return _download(run, "output", list(run.results or []))


async def input_json(request: Request, visitor: Visitor) -> Response:
    run = await service_of(request).get_run(visitor.workspace, request.path_params["run_id"])
    return _download(run, "input", run.input if run.input is not None else [])


routes = [
    Route("/runs/{run_id}", page(run_page), methods=["GET"]),
    Route("/runs/{run_id}/cancel", page(cancel), methods=["POST"]),
    Route("/runs/{run_id}/output.json", page(output_json), methods=["GET"]),
    Route("/runs/{run_id}/input.json", page(input_json), methods=["GET"]),
]
