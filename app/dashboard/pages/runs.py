"""The runs list: filters, keyset pages (newest first), live rows, bulk cancel, go to a run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.api.state import service_of
from app.dashboard.changes import change_log
from app.dashboard.flow_runs import flow_task_ids
from app.dashboard.forms import read_form
from app.dashboard.handlers import page
from app.dashboard.pages.sign_in import safe_next
from app.dashboard.rendering import render
from app.dashboard.run_filters import MAX_IDS, RunQuery
from app.dashboard.visitor import Visitor
from core.domain import RunInfo, RunStatus
from core.errors import InvalidRequest, NotFound
from scheduler.runs.service import RunService

logger = logging.getLogger("conveyor.dashboard")

PAGE_SIZE = 50
CHOICES_LIMIT = 100
FORM_LIMIT = 64 * 1024
PREFIX_MATCHES = 50  # runs listed when an id prefix matches several


@dataclass(frozen=True)
class Choices:
    """What the filter form offers in its drop-downs."""

    task_slugs: list[str]
    workflows: list[tuple[str, str]]  # (id, slug)
    versions: list[tuple[str, str]]  # (id, "slug · id")


async def filter_choices(service: RunService, workspace: str) -> Choices:
    tasks = await service.list_tasks(workspace, workflow_id=None, cursor=None, limit=CHOICES_LIMIT)
    workflows = await service.list_workflows(workspace)
    slug_of = {w.id: w.slug for w in workflows}
    versions = await service.list_versions(workspace, None)
    return Choices(
        task_slugs=sorted({t.slug for t in tasks.items}),
        workflows=[(w.id, w.slug) for w in workflows],
        versions=[
            (v.id, f"{slug_of.get(v.workflow_id, '?')} · {v.id}") for v in versions[:CHOICES_LIMIT]
        ],
    )


async def list_page(
    service: RunService, workspace: str, query: RunQuery
) -> tuple[list[RunInfo], str | None]:
    if query.problems:
        return [], None
    try:
        found = await service.list_runs(
            workspace, query.run_filter(), cursor=query.keyset_cursor(), limit=PAGE_SIZE
        )
    except InvalidRequest as exc:
        query.problems.append(exc.message)
        return [], None
    runs, reached_after = query.keep(found.items)
    return runs, None if reached_after else found.next_cursor


def _only(request: Request) -> list[str]:
    """`only=a,b`: the rows a live page asks for (runs it heard of and does not show yet)."""
    raw = request.query_params.get("only", "")
    return [i for i in raw.split(",") if i.startswith("trn-")][:MAX_IDS]


async def runs_page(request: Request, visitor: Visitor) -> Response:
    query = RunQuery.parse(request.query_params)
    service = service_of(request)
    if request.query_params.get("part") == "rows":
        return await _rows(request, visitor, service, query)
    cursor = change_log(request).cursor  # before reading: nothing after it is missed
    runs, next_cursor = await list_page(service, visitor.workspace, query)
    canceled = request.query_params.get("canceled", "")
    context = {
        "query": query,
        "runs": runs,
        "flow_tasks": await flow_task_ids(service, visitor.workspace, runs),
        "next_link": query.link(cursor=next_cursor) if next_cursor else None,
        "newest_link": query.link(cursor="", before=""),
        "rows_link": query.link(cursor="", before="", part="rows"),
        "choices": await filter_choices(service, visitor.workspace),
        "statuses": [s.value for s in RunStatus],
        "live_cursor": cursor,
        "canceled": int(canceled) if canceled.isdigit() else None,
    }
    status_code = 400 if query.problems else 200
    return render(request, visitor, "runs.html", context, status_code=status_code)


async def _rows(
    request: Request, visitor: Visitor, service: RunService, query: RunQuery
) -> Response:
    """Rows of the list (those of `only=` alone, when given) for the page's script."""
    runs: list[RunInfo] = []
    if "only" in request.query_params:
        query.ids = [i for i in _only(request) if not query.ids or i in query.ids]
    if query.ids or "only" not in request.query_params:
        runs, _ = await list_page(service, visitor.workspace, query)
    flow_tasks = await flow_task_ids(service, visitor.workspace, runs)
    return render(request, visitor, "runs_rows.html", {"runs": runs, "flow_tasks": flow_tasks})


async def cancel_selected(request: Request, visitor: Visitor) -> Response:
    """Cancels every run ticked in the list (each with its unfinished descendants)."""
    form = await read_form(request, FORM_LIMIT)
    visitor.check_csrf(form.get("csrf_token"))
    chosen = list(dict.fromkeys(i for i in form.getlist("run") if i.startswith("trn-")))
    if len(chosen) > MAX_IDS:
        raise InvalidRequest(f"cancel at most {MAX_IDS} runs at once, not {len(chosen)}")
    service = service_of(request)
    canceled = 0
    for run in await service.run_summaries(visitor.workspace, chosen):
        if run.status.terminal:
            continue
        after = await service.cancel_run(visitor.workspace, run.id)
        canceled += after.status is RunStatus.CANCELED
    logger.info("dashboard bulk cancel: %d of %d runs cancelled", canceled, len(chosen))
    back = safe_next(form.get("back") or "/runs")
    joiner = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{joiner}canceled={canceled}", status_code=303)


async def go(request: Request, visitor: Visitor) -> Response:
    """A run by its id, or by the start of it; several matches are listed."""
    wanted = request.query_params.get("id", "").strip().lower()
    if not wanted:
        return RedirectResponse("/runs", status_code=303)
    if not all(c.isascii() and (c.isalnum() or c == "-") for c in wanted):
        raise NotFound(f"{wanted!r} is not an id: ids are letters, digits and dashes.")
    if wanted.startswith("bld-"):
        return RedirectResponse(f"/builds/{wanted}", status_code=303)
    prefix = wanted if wanted.startswith("trn-") else f"trn-{wanted}"
    service = service_of(request)
    matches = await service.run_ids_starting(visitor.workspace, prefix, PREFIX_MATCHES)
    if prefix in matches or len(matches) == 1:
        found = prefix if prefix in matches else matches[0]
        return RedirectResponse(f"/runs/{found}", status_code=303)
    if not matches:
        raise NotFound(f"No run has an id starting with {wanted!r}.")
    return RedirectResponse("/runs?" + urlencode([("id", m) for m in matches]), status_code=303)


async def home(request: Request, visitor: Visitor) -> Response:
    return RedirectResponse("/runs", status_code=303)


routes = [
    Route("/", page(home), methods=["GET"]),
    Route("/runs", page(runs_page), methods=["GET"]),
    Route("/runs/go", page(go), methods=["GET"]),
    Route("/runs/cancel", page(cancel_selected), methods=["POST"]),
]
