"""`GET /openapi.json`: an OpenAPI 3.1 document built from the pydantic shapes in `schemas`."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api import schemas, workflow_resources_openapi
from app.api.responses import JSONResponse

Obj = dict[str, Any]
REF = "#/components/schemas/{model}"


def _ref(name: str) -> Obj:
    return {"$ref": REF.format(model=name)}


def _json(schema: Obj, description: str = "OK") -> Obj:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _list_of(name: str) -> Obj:
    return _json({"type": "array", "items": _ref(name)})


def _query(name: str, schema: Obj, description: str = "", required: bool = False) -> Obj:
    param: Obj = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        param["description"] = description
    return param


def _path(name: str) -> Obj:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_STR: Obj = {"type": "string"}
_STRS: Obj = {"type": "array", "items": _STR}
_ERRORS: Obj = {
    str(status): _json(_ref("Error"), text)
    for status, text in [
        (400, "invalid request"),
        (401, "missing or unknown API key"),
        (404, "not found"),
        (500, "internal error"),
    ]
}
_OWNER = _query("ownerId", _STRS, "ignored: a key sees one workspace")
_CURSOR = [
    _query("cursor", _STR, "the previous page's last cursor"),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
]


def _op(summary: str, responses: Obj, parameters: list[Obj] | None = None, **extra: Any) -> Obj:
    op: Obj = {"summary": summary, "responses": {**responses, **_ERRORS}, **extra}
    if parameters:
        op["parameters"] = parameters
    return op


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
    run_filters = [
        _query("status", _STRS, "repeat or comma-separate; `completed` = `succeeded`"),
        _query("taskSlug", _STR),
        _query("workflowId", _STR),
        _query("workflowVersionId", _STR),
        _query("rootTaskRunId", _STR),
        _query("parentTaskRunId", _STR),
        _query("rootsOnly", {"type": "boolean"}),
        _query("childrenOnly", {"type": "boolean"}),
        _OWNER,
    ]
    sse = {
        "description": "text/event-stream of `task.completed` events",
        "content": {"text/event-stream": {"schema": _STR}},
    }
    text = {"description": "the log", "content": {"text/plain": {"schema": _STR}}}
    wait = {"type": "number", "minimum": 0, "maximum": 60}
    return {
        "/healthz": {"get": _op("Liveness", {"200": _json(_ref("Health"))})},
        "/openapi.json": {"get": _op("This document", {"200": _json({"type": "object"})})},
        "/v1/task-runs": {
            "post": _op(
                "Start a task run",
                {
                    "202": _json(_ref("TaskRun"), "started"),
                    "413": _json(_ref("Error"), "input too large"),
                },
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": _ref("RunTaskRequest")}},
                },
            ),
            "get": _op(
                "List task runs, newest first",
                {"200": _list_of("TaskRunWithCursor")},
                [*_CURSOR, *run_filters],
            ),
        },
        "/v1/task-runs/events": {
            "get": _op(
                "Stream task.completed events",
                {"200": sse},
                [_query("taskRunIds", _STRS, "repeat or comma-separate", required=True)],
            ),
        },
        "/v1/task-runs/{taskRunId}": {
            "get": _op(
                "A task run's details",
                {"200": _json(_ref("TaskRunDetails"))},
                [_path("taskRunId"), _query("wait", wait, "seconds to wait for the end")],
            ),
            "delete": _op(
                "Cancel a run and its descendants",
                {"204": {"description": "done"}},
                [_path("taskRunId")],
            ),
        },
        "/v1/tasks": {
            "get": _op(
                "Tasks of the active versions (of the versions named by workflowVersionId)",
                {"200": _list_of("TaskWithCursor")},
                [
                    *_CURSOR,
                    _query("taskSlug", _STRS, "`workflow/task` or a bare task name"),
                    _query("workflowId", _STRS),
                    _query("workflowVersionId", _STRS),
                    _OWNER,
                ],
            ),
        },
        "/v1/tasks/{taskRef}": {
            "get": _op(
                "A task by `workflow/name` or id", {"200": _json(_ref("Task"))}, [_path("taskRef")]
            ),
        },
        "/v1/workflows": {
            "get": _op(
                "Workflows, oldest first",
                {"200": _list_of("WorkflowWithCursor")},
                [
                    *_CURSOR,
                    _query("name", _STRS, "a workflow's name or slug"),
                    _query("workflowID", _STRS, "Render's spelling; workflowId also works"),
                    _OWNER,
                    _query("environmentId", _STRS, "ignored: a workspace has no environments"),
                ],
            ),
        },
        "/v1/workflowversions": {
            "get": _op(
                "Workflow versions, newest first",
                {"200": _list_of("WorkflowVersionWithCursor")},
                [
                    *_CURSOR,
                    _query("workflowID", _STRS, "Render's spelling; workflowId also works"),
                    _query("workflowVersionId", _STRS),
                    _OWNER,
                ],
            ),
        },
        "/v1/workflowversions/{workflowVersionId}": {
            "get": _op(
                "A workflow version",
                {"200": _json(_ref("WorkflowVersion"))},
                [_path("workflowVersionId")],
            ),
        },
        "/v1/logs": {
            "get": _op(
                "An attempt's log",
                {"200": text},
                [
                    _query("taskRun", _STR, required=True),
                    _query("attempt", {"type": "integer", "minimum": 0}, "latest by default"),
                    _query("follow", {"type": "boolean"}, "stream until the attempt ends"),
                ],
            ),
        },
        "/v1/usage": {
            "get": _op("Compute seconds and cost", {"200": _json(_USAGE)}),
        },
        "/v1/schedules": {
            "get": _op(
                "Cron schedules of the active versions, soonest first",
                {"200": _json({"type": "array", "items": _SCHEDULE_ITEM})},
            ),
        },
        "/metrics": {
            "get": _op(
                "The queue and usage in Prometheus' text format",
                {"200": {"description": "metrics", "content": {"text/plain": {"schema": _STR}}}},
            ),
        },
    }


@cache
def document() -> Obj:
    _, defs = models_json_schema(
        [(model, "serialization") for model in schemas.ALL_SCHEMAS], ref_template=REF
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": "Conveyor REST API", "version": "1"},
        "paths": {**_paths(), **workflow_resources_openapi.paths()},
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"apiKey": []}],
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(document())


routes = [Route("/openapi.json", openapi, methods=["GET"])]
