"""`GET /openapi.json`: an OpenAPI 3.1 document built from the pydantic shapes in `schemas`."""

from __future__ import annotations

from functools import cache

from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api import (
    accounts_openapi,
    flows_openapi,
    github_installations_openapi,
    schemas,
    workflow_resources_openapi,
)
from app.api.openapi_parts import (
    ONE_VALUE,
    OWNER,
    PAGE,
    REF,
    SOME_VALUE,
    TASK_REF,
    TEXT,
    TEXTS,
    WRITE_ERRORS,
    Obj,
    json_answer,
    json_body,
    operation,
    path,
    query,
    ref,
)
from app.api.responses import JSONResponse
from app.api.state import app_state

_STR: Obj = {"type": "string"}
_CURSOR = PAGE
_PUBLIC: list[Obj] = []  # no key needed


def _list_of(name: str) -> Obj:
    return json_answer({"type": "array", "items": ref(name)})


_NUMBER: Obj = {"type": "number"}
_USAGE_ROW: Obj = {
    "type": "object",
    "required": ["computeSeconds", "costUsd"],
    "properties": {
        "taskSlug": _STR,
        "day": _STR,
        "attempts": {"type": "integer"},
        "computeSeconds": _NUMBER,
        "costUsd": _NUMBER,
    },
}
_USAGE: Obj = {
    "type": "object",
    "required": ["maxConcurrency", "queue", "perTask", "perDay"],
    "properties": {
        "maxConcurrency": {"type": "integer"},
        "queue": {
            "type": "object",
            "properties": {k: {"type": "integer"} for k in ("pending", "running", "waiting")},
        },
        "perTask": {"type": "array", "items": _USAGE_ROW},
        "perDay": {"type": "array", "items": _USAGE_ROW},
    },
}


_SCHEDULE_ITEM: Obj = {
    "type": "object",
    "required": ["schedule", "cursor"],
    "properties": {
        "cursor": _STR,
        "schedule": {
            "type": "object",
            "required": ["id", "workflowId", "taskSlug", "cron", "nextFireAt"],
            "properties": {
                "id": _STR,
                "workflowId": _STR,
                "taskSlug": _STR,
                "cron": _STR,
                "nextFireAt": {"type": "string", "format": "date-time"},
                "lastFiredAt": {"type": "string", "format": "date-time"},
                "lastTaskRunId": _STR,
            },
        },
    },
}


def _paths() -> Obj:
    statuses = ["pending", "running", "succeeded", "failed", "canceled", "completed"]
    run_filters = [
        query(
            "status",
            {"type": "array", "items": {"enum": statuses}},
            "repeat or comma-separate; `completed` = `succeeded`",
        ),
        query("taskSlug", TEXT),
        query("workflowId", TEXT),
        query("workflowVersionId", TEXT),
        query("rootTaskRunId", TEXT),
        query("parentTaskRunId", ONE_VALUE),
        query("rootsOnly", {"type": "boolean"}),
        query("childrenOnly", {"type": "boolean"}),
        OWNER,
    ]
    sse = {
        "description": "text/event-stream of `task.completed` events",
        "content": {"text/event-stream": {"schema": _STR}},
    }
    log = {"description": "the log", "content": {"text/plain": {"schema": _STR}}}
    wait = {"type": "number", "minimum": 0, "maximum": 60}
    run_ids = {"type": "array", "items": SOME_VALUE, "minItems": 1, "maxItems": 100}
    return {
        "/healthz": {
            "get": operation("Liveness", {"200": json_answer(ref("Health"))}, security=_PUBLIC)
        },
        "/openapi.json": {
            "get": operation(
                "This document", {"200": json_answer({"type": "object"})}, security=_PUBLIC
            )
        },
        "/v1/task-runs": {
            "post": operation(
                "Start a task run",
                {"202": json_answer(ref("TaskRun"), "started")},
                *WRITE_ERRORS,
                429,
                requestBody=json_body(ref("RunTaskRequest")),
            ),
            "get": operation(
                "List task runs, newest first",
                {"200": _list_of("TaskRunWithCursor")},
                parameters=[*_CURSOR, *run_filters],
            ),
        },
        "/v1/task-runs/events": {
            "get": operation(
                "Stream task.completed events",
                {"200": sse},
                parameters=[query("taskRunIds", run_ids, "repeat or comma-separate", True)],
            ),
        },
        "/v1/task-runs/{taskRunId}": {
            "get": operation(
                "A task run's details",
                {"200": json_answer(ref("TaskRunDetails"))},
                parameters=[path("taskRunId"), query("wait", wait, "seconds to wait for the end")],
            ),
            "delete": operation(
                "Cancel a run and its descendants",
                {"204": {"description": "done"}},
                403,
                parameters=[path("taskRunId")],
            ),
        },
        "/v1/tasks": {
            "get": operation(
                "Tasks of the active versions (of the versions named by workflowVersionId)",
                {"200": _list_of("TaskWithCursor")},
                parameters=[
                    *_CURSOR,
                    query("taskSlug", TEXTS, "`workflow/task` or a bare task name"),
                    query("workflowId", TEXTS),
                    query("workflowVersionId", TEXTS),
                    OWNER,
                ],
            ),
        },
        "/v1/tasks/{taskRef}": {
            "get": operation(
                "A task by `workflow/name` or id",
                {"200": json_answer(ref("Task"))},
                parameters=[path("taskRef", TASK_REF)],
            ),
        },
        "/v1/workflowversions": {
            "get": operation(
                "Workflow versions, newest first",
                {"200": _list_of("WorkflowVersionWithCursor")},
                parameters=[
                    *_CURSOR,
                    query("workflowID", TEXTS, "Render's spelling; workflowId also works"),
                    query("workflowId", TEXTS),
                    query("workflowVersionId", TEXTS),
                    OWNER,
                ],
            ),
        },
        "/v1/workflowversions/{workflowVersionId}": {
            "get": operation(
                "A workflow version",
                {"200": json_answer(ref("WorkflowVersion"))},
                parameters=[path("workflowVersionId")],
            ),
        },
        "/v1/logs": {
            "get": operation(
                "An attempt's log",
                {"200": log},
                parameters=[
                    query("taskRun", SOME_VALUE, required=True),
                    query(
                        "attempt",
                        {"type": "integer", "minimum": 0, "maximum": 1_000_000},
                        "latest by default",
                    ),
                    query("follow", {"type": "boolean"}, "stream until the attempt ends"),
                ],
            ),
        },
        "/v1/usage": {
            "get": operation("Compute seconds and cost", {"200": json_answer(_USAGE)}),
        },
        "/v1/schedules": {
            "get": operation(
                "Cron schedules of the active versions, soonest first",
                {"200": json_answer({"type": "array", "items": _SCHEDULE_ITEM})},
            ),
        },
        "/metrics": {
            "get": operation(
                "The queue and usage in Prometheus' text format",
                {"200": {"description": "metrics", "content": {"text/plain": {"schema": _STR}}}},
            ),
        },
    }


_DEV_NOTE = (
    "Served by `conveyor dev`: requests without a key act as the default workspace, so the key "
    "is optional here (a key that is sent must be valid)."
)


@cache
def document(dev: bool = False) -> Obj:
    """The OpenAPI document; `dev` (no key needed) makes every key requirement optional."""
    _, defs = models_json_schema(
        [(model, "serialization") for model in schemas.ALL_SCHEMAS], ref_template=REF
    )
    info: Obj = {"title": "Conveyor REST API", "version": "1"}
    if dev:
        info["description"] = _DEV_NOTE
    return {
        "openapi": "3.1.0",
        "info": info,
        "paths": {
            **_paths(),
            **workflow_resources_openapi.paths(),
            **accounts_openapi.paths(),
            **github_installations_openapi.paths(),
            **flows_openapi.paths(),
        },
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
        # `{}`: no key at all is also accepted
        "security": [{"apiKey": []}, {}] if dev else [{"apiKey": []}],
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(document(dev=app_state(request).anonymous_workspace is not None))


routes = [Route("/openapi.json", openapi, methods=["GET"])]
