"""Tasks per workflow with options and parameters, and the form that starts a run."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.api.state import app_state, service_of
from app.dashboard.forms import read_form
from app.dashboard.handlers import page
from app.dashboard.rendering import render
from app.dashboard.run_input import (
    FIELD_PREFIX,
    InputProblem,
    form_fields,
    from_fields,
    from_raw,
)
from app.dashboard.visitor import Visitor
from core.domain import TaskInfo
from core.errors import InvalidRequest, PayloadTooLarge
from scheduler.runs.service import RunService

logger = logging.getLogger("conveyor.dashboard")

FORM_OVERHEAD = 64 * 1024


async def all_tasks(service: RunService, workspace: str) -> list[TaskInfo]:
    tasks: list[TaskInfo] = []
    cursor: str | None = None
    while True:
        found = await service.list_tasks(workspace, workflow_id=None, cursor=cursor, limit=100)
        tasks.extend(found.items)
        cursor = found.next_cursor
        if cursor is None:
            return tasks


async def tasks_page(request: Request, visitor: Visitor) -> Response:
    service = service_of(request)
    workflows = await service.list_workflows(visitor.workspace)
    by_workflow: dict[str, list[TaskInfo]] = defaultdict(list)
    for task in await all_tasks(service, visitor.workspace):
        by_workflow[task.workflow_id].append(task)
    for tasks in by_workflow.values():
        tasks.sort(key=lambda t: t.name)
    context = {"workflows": workflows, "tasks_by_workflow": by_workflow}
    return render(request, visitor, "tasks.html", context)


def _form_context(
    task: TaskInfo,
    values: dict[str, str],
    problems: list[InputProblem],
) -> dict[str, Any]:
    return {
        "task": task,
        "fields": form_fields(task.parameters),
        "values": values,
        "problems": problems,
        "problem_for": {p.field: p.message for p in problems},
        "field_prefix": FIELD_PREFIX,
        "mode": values.get("mode", "fields"),
        "source": "",
    }


async def task_page(request: Request, visitor: Visitor) -> Response:
    service = service_of(request)
    task = await service.get_task(visitor.workspace, request.path_params["slug"])
    values: dict[str, str] = {}
    source = request.query_params.get("from", "")
    if source:  # "edit input and run": the form starts from that run's input, as raw JSON
        run = await service.get_run(visitor.workspace, source)
        text = json.dumps(run.input if run.input is not None else [], indent=2, ensure_ascii=False)
        values = {"mode": "raw", "raw_input": text}
    context = _form_context(task, values, [])
    context["source"] = source
    return render(request, visitor, "task.html", context)


async def start_run(request: Request, visitor: Visitor) -> Response:
    limits = app_state(request).runtime.settings.limits
    # Form encoding can triple the size of JSON text, hence the generous body limit.
    form = await read_form(request, limits.max_input_bytes * 3 + FORM_OVERHEAD)
    visitor.check_csrf(form.get("csrf_token"))
    service = service_of(request)
    task = await service.get_task(visitor.workspace, request.path_params["slug"])
    if form.get("mode", "fields") == "raw":
        run_input, problems = from_raw(form.get("raw_input"))
    else:
        run_input, problems = from_fields(task.parameters, form.fields)
    status = 400
    if not problems:
        try:
            run = await service.create_run(visitor.workspace, task.slug, run_input)
        except (InvalidRequest, PayloadTooLarge) as exc:
            problems = [InputProblem("raw_input" if form.get("mode") == "raw" else "", exc.message)]
            status = exc.http_status
        else:
            logger.info("dashboard started run %s of %s", run.id, task.slug)
            return RedirectResponse(f"/runs/{run.id}", status_code=303)
    context = _form_context(task, form.fields, problems)
    return render(request, visitor, "task.html", context, status_code=status)


routes = [
    Route("/tasks", page(tasks_page), methods=["GET"]),
    Route("/tasks/{slug:path}", page(task_page), methods=["GET"]),
    Route("/tasks/{slug:path}", page(start_run), methods=["POST"]),
]
