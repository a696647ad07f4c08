"""One run: its tree as a waterfall, attempts, error, input, output, logs, a flow run's steps on
their own time axis; downloads; and the fragments its script patches in while anything in the
tree runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.api.responses import JSONResponse
from app.api.state import service_of
from app.dashboard.changes import change_log
from app.dashboard.flow_runs import is_flow
from app.dashboard.flow_timeline import StepBoard, step_board
from app.dashboard.handlers import page
from app.dashboard.present import pretty_json
from app.dashboard.rendering import render
from app.dashboard.tracebacks import parse
from app.dashboard.tree import TreeNode, build_tree
from app.dashboard.visitor import Visitor
from app.dashboard.waterfall import Waterfall, rows_of, waterfall
from core.domain import RunInfo, RunStatus
from core.errors import InvalidRequest, NotFound
from scheduler.runs.log_times import line_times, split_lines
from scheduler.runs.service import RunService
from scheduler.runs.timeline import TreeHistory

MAX_TREE = 1000  # runs of one tree drawn on the page; the rest are counted and linked
LOG_BYTES = 256 * 1024  # log shown in the page; the whole log is one link away
MAX_ONLY = 200  # rows a live page asks for at once
# the indented list beside the waterfall; a bigger tree links to its runs' list instead
LIST_LIMIT = 300


@dataclass(frozen=True)
class LogView:
    """The part of an attempt's log a page shows, line by line with when each arrived."""

    attempt: int
    lines: list[tuple[str, int | None]]  # (text with its newline, ms since the epoch)
    size: int  # bytes shown: following the log goes on from there
    cut: bool  # the log is longer than shown

    @property
    def empty(self) -> bool:
        return not self.lines


async def read_log_view(
    service: RunService, workspace: str, run: RunInfo, attempt: int | None
) -> LogView | None:
    """The start of an attempt's log (the latest attempt by default); None if it has none."""
    try:
        chunk = await service.read_log(workspace, run.id, attempt, 0)
    except NotFound:
        return None
    data = bytearray()
    while chunk.data and len(data) < LOG_BYTES:
        data.extend(chunk.data)
        chunk = await service.read_log(workspace, run.id, chunk.attempt, chunk.next_offset)
    cut = len(data) > LOG_BYTES or bool(chunk.data)
    shown = bytes(data[:LOG_BYTES])
    stamps = await service.log_stamps(workspace, run.id, chunk.attempt)
    ended = next((a.ended_at for a in run.attempts if a.number == chunk.attempt), None)
    times = line_times(shown, stamps, ended)
    texts = [line.decode("utf-8", errors="replace") for line in split_lines(shown)]
    return LogView(chunk.attempt, list(zip(texts, times, strict=True)), len(shown), cut)


def _attempt_param(request: Request) -> int | None:
    raw = request.query_params.get("attempt")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise InvalidRequest(f"attempt must be a number, got {raw!r}")
    return int(raw)


def _only(request: Request) -> list[str] | None:
    raw = request.query_params.get("only")
    if raw is None:
        return None
    return [i for i in raw.split(",") if i.startswith("trn-")][:MAX_ONLY]


async def tree_of(service: RunService, workspace: str, run: RunInfo) -> tuple[Waterfall, TreeNode]:
    """The run's whole tree (up to MAX_TREE runs, and always the run itself)."""
    history = await service.tree_history(workspace, run.root_id, MAX_TREE, include=run.id)
    board, tree = waterfall(history), build_tree(history.runs, run.root_id)
    if board is None or tree is None:  # its root could not be read: the run alone
        board = waterfall(TreeHistory(run.id, [run], 1))
        tree = TreeNode(run)
    assert board is not None
    return board, tree


def run_context(run: RunInfo) -> dict[str, Any]:
    """What the run's own sections show (also the live fragment)."""
    last = run.attempts[-1] if run.attempts else None
    trace_text = run.stack_trace or (last.stack_trace if last else None)
    output_text, output_cut = pretty_json(run.results or [])
    return {
        "run": run,
        "traceback": parse(trace_text),
        "trace_text": trace_text,
        "output_text": output_text,
        "output_cut": output_cut,
        "latest_attempt": last.number if last else None,
        "compute_seconds": sum(a.compute_seconds or 0.0 for a in run.attempts),
        "cost_usd": sum(a.cost_usd or 0.0 for a in run.attempts),
        "parse_traceback": parse,
        "failed": run.status is RunStatus.FAILED,
    }


async def run_page(request: Request, visitor: Visitor) -> Response:
    service = service_of(request)
    cursor = change_log(request).cursor  # before reading: nothing after it is missed
    run = await service.get_run(visitor.workspace, request.path_params["run_id"])
    if request.query_params.get("part") == "live":
        return await _live_part(request, visitor, service, run)
    board, tree = await tree_of(service, visitor.workspace, run)
    log = await read_log_view(service, visitor.workspace, run, _attempt_param(request))
    input_text, input_cut = pretty_json(run.input if run.input is not None else [])
    own = run_context(run)
    flow = await is_flow(service, visitor.workspace, run)
    steps = await service.flow_steps(visitor.workspace, run.id) if flow else []
    context = {
        "is_flow": flow,
        "flow_steps": steps,
        "steps_board": step_board(run, steps) if flow else None,
        **own,
        "board": board,
        "rows": board.rows,
        "tree": tree,
        "input_text": input_text,
        "input_cut": input_cut,
        "log": log,
        "log_attempt": log.attempt if log else None,
        "log_live": not run.status.terminal
        and (log is None or log.attempt == own["latest_attempt"]),
        "live_cursor": cursor,
        "list_limit": LIST_LIMIT,
    }
    return render(request, visitor, "run.html", context)


async def _live_part(
    request: Request, visitor: Visitor, service: RunService, run: RunInfo
) -> Response:
    """The run's own sections (when asked for), the waterfall rows of `only=` runs, and a flow
    run's steps (`steps=1`: its page knows it is a flow; any change in its tree may be a step's)."""
    only = _only(request)
    board, _ = await tree_of(service, visitor.workspace, run)
    rows = board.rows if only is None else rows_of(board, only)
    flow = request.query_params.get("steps") == "1"
    steps = await service.flow_steps(visitor.workspace, run.id) if flow else []
    steps_board: StepBoard | None = step_board(run, steps) if flow else None
    context = {
        **run_context(run),
        "is_flow": flow,
        "flow_steps": steps,
        "steps_board": steps_board,
        "board": board,
        "rows": rows,
        "with_run": only is None or run.id in only,
    }
    return render(request, visitor, "run_live.html", context)


def _download(run: RunInfo, what: str, value: object) -> Response:
    disposition = f'attachment; filename="{run.id}-{what}.json"'
    return JSONResponse(value, headers={"Content-Disposition": disposition})


async def output_json(request: Request, visitor: Visitor) -> Response:
    run = await service_of(request).get_run(visitor.workspace, request.path_params["run_id"])
    return _download(run, "output", list(run.results or []))


async def input_json(request: Request, visitor: Visitor) -> Response:
    run = await service_of(request).get_run(visitor.workspace, request.path_params["run_id"])
    return _download(run, "input", run.input if run.input is not None else [])


async def log_file(request: Request, visitor: Visitor) -> Response:
    """An attempt's whole log as written so far, as a file."""
    service = service_of(request)
    run_id = request.path_params["run_id"]
    first = await service.read_log(visitor.workspace, run_id, _attempt_param(request), 0)

    async def body() -> AsyncIterator[bytes]:
        chunk = first
        while chunk.data:
            yield chunk.data
            chunk = await service.read_log(
                visitor.workspace, run_id, chunk.attempt, chunk.next_offset
            )

    name = f"{run_id}-attempt-{first.attempt}.log"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(body(), media_type="text/plain; charset=utf-8", headers=headers)


routes = [
    Route("/runs/{run_id}", page(run_page), methods=["GET"]),
    Route("/runs/{run_id}/output.json", page(output_json), methods=["GET"]),
    Route("/runs/{run_id}/input.json", page(input_json), methods=["GET"]),
    Route("/runs/{run_id}/log.txt", page(log_file), methods=["GET"]),
]
