"""What a run's page can do to it: cancel it, run it again, retry what failed.

- **Rerun** starts a new root run of the run's task with the same input, on the run's own
  version (`wf/task:version`) or on the workflow's active one. A child run rerun this way is a
  new root: its old parent is finished and cannot take a new child.
- **Retry from failure** (failed runs only) either reruns the tree (a new root run of the
  tree's root task, same input, active version), or starts a new root run, same input, active
  version, for each run of this run's subtree *where the failure started*: a failed run none of
  whose children failed. Those new runs do not report to the old parents — a parent's children
  are created by the parent's code, and that code already ended — so this suits work that stands
  on its own (each child's side effects are what matters); otherwise retry the tree.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.api.state import service_of
from app.dashboard.forms import read_form
from app.dashboard.handlers import page
from app.dashboard.visitor import Visitor
from core.domain import RunInfo, RunStatus
from core.errors import Conflict, InvalidRequest
from scheduler.runs.service import RunService

logger = logging.getLogger("conveyor.dashboard")

FORM_LIMIT = 16 * 1024
MAX_RETRIED = 100  # new runs one "retry failed runs" may start
TREE_LIMIT = 10_000  # runs of a tree looked at to find where failures started


async def cancel(request: Request, visitor: Visitor) -> Response:
    form = await read_form(request, FORM_LIMIT)
    visitor.check_csrf(form.get("csrf_token"))
    run_id = request.path_params["run_id"]
    run = await service_of(request).cancel_run(visitor.workspace, run_id)
    logger.info("dashboard cancel: run %s (%s) is %s", run.id, run.task_slug, run.status.value)
    return RedirectResponse(f"/runs/{run.id}", status_code=303)


def task_ref(run: RunInfo, version: str) -> str:
    """`wf/task:version` for the run's own version, `wf/task` for the active one."""
    if version == "same":
        return f"{run.task_slug}:{run.version_id}"
    if version == "active":
        return run.task_slug
    raise InvalidRequest(f"version must be 'same' or 'active', not {version!r}")


async def rerun(request: Request, visitor: Visitor) -> Response:
    form = await read_form(request, FORM_LIMIT)
    visitor.check_csrf(form.get("csrf_token"))
    service = service_of(request)
    run = await service.get_run(visitor.workspace, request.path_params["run_id"])
    started = await service.create_run(
        visitor.workspace, task_ref(run, form.get("version", "same")), _input(run)
    )
    logger.info("dashboard rerun of %s: %s", run.id, started.id)
    return RedirectResponse(f"/runs/{started.id}", status_code=303)


def _input(run: RunInfo) -> object:
    return run.input if run.input is not None else []


async def failure_origins(service: RunService, workspace: str, run: RunInfo) -> list[RunInfo]:
    """The failed runs of `run`'s subtree none of whose children failed, oldest first."""
    history = await service.tree_history(workspace, run.root_id, TREE_LIMIT, include=run.id)
    children: dict[str, list[RunInfo]] = {}
    for each in history.runs:
        if each.parent_id:
            children.setdefault(each.parent_id, []).append(each)
    below: list[RunInfo] = []
    stack = [run.id]
    while stack:
        current = stack.pop()
        for child in children.get(current, []):
            below.append(child)
            stack.append(child.id)
    subtree = [run, *below]
    return sorted(
        (
            each
            for each in subtree
            if each.status is RunStatus.FAILED
            and not any(c.status is RunStatus.FAILED for c in children.get(each.id, []))
        ),
        key=lambda each: each.id,
    )


async def retry(request: Request, visitor: Visitor) -> Response:
    form = await read_form(request, FORM_LIMIT)
    visitor.check_csrf(form.get("csrf_token"))
    service = service_of(request)
    run = await service.get_run(visitor.workspace, request.path_params["run_id"])
    if run.status is not RunStatus.FAILED:
        raise Conflict(f"run {run.id} is {run.status.value}: only a failed run is retried")
    mode = form.get("mode", "tree")
    if mode == "tree":
        root = run
        if run.parent_id is not None:
            root = await service.get_run(visitor.workspace, run.root_id)
        started = await service.create_run(visitor.workspace, root.task_slug, _input(root))
        logger.info("dashboard retry of tree %s: %s", root.id, started.id)
        return RedirectResponse(f"/runs/{started.id}", status_code=303)
    if mode != "failed":
        raise InvalidRequest(f"mode must be 'tree' or 'failed', not {mode!r}")
    origins = await failure_origins(service, visitor.workspace, run)
    if len(origins) > MAX_RETRIED:
        raise InvalidRequest(
            f"{len(origins)} runs failed on their own; retry at most {MAX_RETRIED} at once "
            "(retry the tree, or a run further down)"
        )
    new_ids = []
    for origin in origins:
        full = await service.get_run(visitor.workspace, origin.id)
        started = await service.create_run(visitor.workspace, full.task_slug, _input(full))
        new_ids.append(started.id)
    logger.info("dashboard retry of %d failed runs under %s", len(new_ids), run.id)
    if len(new_ids) == 1:
        return RedirectResponse(f"/runs/{new_ids[0]}", status_code=303)
    return RedirectResponse("/runs?" + urlencode([("id", i) for i in new_ids]), status_code=303)


routes = [
    Route("/runs/{run_id}/cancel", page(cancel), methods=["POST"]),
    Route("/runs/{run_id}/rerun", page(rerun), methods=["POST"]),
    Route("/runs/{run_id}/retry", page(retry), methods=["POST"]),
]
