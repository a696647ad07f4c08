"""The runs list: filters, keyset pages (newest first), live status through /dashboard/events."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.api.state import service_of
from app.dashboard.handlers import page
from app.dashboard.rendering import render
from app.dashboard.run_filters import RunQuery
from app.dashboard.visitor import Visitor
from core.domain import RunInfo, RunStatus
from core.errors import InvalidRequest
from scheduler.runs.service import RunService

PAGE_SIZE = 50
CHOICES_LIMIT = 100


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


async def runs_page(request: Request, visitor: Visitor) -> Response:
    query = RunQuery.parse(request.query_params)
    service = service_of(request)
    runs, next_cursor = await list_page(service, visitor.workspace, query)
    context = {
        "query": query,
        "runs": runs,
        "next_link": query.link(cursor=next_cursor) if next_cursor else None,
        "newest_link": query.link(cursor="", before=""),
        "choices": await filter_choices(service, visitor.workspace),
        "statuses": [s.value for s in RunStatus],
    }
    status_code = 400 if query.problems else 200
    return render(request, visitor, "runs.html", context, status_code=status_code)


async def home(request: Request, visitor: Visitor) -> Response:
    return RedirectResponse("/runs", status_code=303)


routes = [
    Route("/", page(home), methods=["GET"]),
    Route("/runs", page(runs_page), methods=["GET"]),
]
