"""The OpenAPI paths of flows and flow runs (app/api/flows.py), in Render's shapes."""

from __future__ import annotations

from app.api.openapi_parts import (
    OWNER,
    PAGE,
    TASK_REF,
    TEXTS,
    TIME,
    WRITE_ERRORS,
    Obj,
    json_answer,
    json_body,
    operation,
    path,
    query,
    text,
)

_STR: Obj = {"type": "string"}
_INT: Obj = {"type": "integer"}
_SEQ: Obj = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_STATUS: Obj = {"enum": ["pending", "running", "paused", "succeeded", "failed", "canceled"]}
_STEP_STATUS: Obj = {"enum": ["running", "succeeded", "failed"]}
_INPUT: Obj = {"oneOf": [{"type": "array"}, {"type": "object"}]}
_FLOW: Obj = {
    "type": "object",
    "required": ["id", "name", "createdAt"],
    "additionalProperties": False,
    "properties": {
        "id": _STR,
        "name": _STR,
        "createdAt": TIME,
        "workflowId": _STR,
        "workflowVersionId": _STR,
    },
}
_RUN_FIELDS: Obj = {
    "id": _STR,
    "flowId": _STR,
    "status": _STATUS,
    "startedAt": TIME,
    "completedAt": TIME,
}
_RUN: Obj = {
    "type": "object",
    "required": ["id", "flowId", "status"],
    "additionalProperties": False,
    "properties": _RUN_FIELDS,
}
_ATTEMPT: Obj = {
    "type": "object",
    "required": ["attempt", "status"],
    "additionalProperties": False,
    "properties": {
        "attempt": _INT,
        "status": _STATUS,
        "startedAt": TIME,
        "completedAt": TIME,
        "error": _STR,
    },
}
_ERROR_DETAILS: Obj = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {
            "enum": [
                "flow_determinism_error",
                "flow_history_too_large",
                "flow_payload_too_large",
                "flow_step_limit_exceeded",
            ]
        },
        "message": _STR,
        "seq": _INT,
        "flowAttempt": _INT,
        "kind": {"enum": ["input_hash", "type", "unknown_type"]},
        "expected": _STR,
        "actual": _STR,
    },
}
_RUN_DETAILS: Obj = {
    "type": "object",
    "required": ["id", "flowId", "status", "input", "results", "attempts"],
    "additionalProperties": False,
    "properties": {
        **_RUN_FIELDS,
        "input": _INPUT,
        "results": {"type": "array"},
        "attempts": {"type": "array", "items": _ATTEMPT},
        "error": _STR,
        "errorDetails": _ERROR_DETAILS,
    },
}
_STEP_FIELDS: Obj = {
    "seq": _INT,
    "stepKey": _STR,
    "type": {"enum": ["inline", "detached", "sleep"]},
    "status": _STEP_STATUS,
    "startedAt": TIME,
    "flowRunAttempt": _INT,
    "name": _STR,
    "completedAt": TIME,
    "wakeAt": TIME,
    "childTaskRunId": _STR,
}
_STEP_REQUIRED = ["seq", "stepKey", "type", "status", "startedAt", "flowRunAttempt"]
_STEP: Obj = {
    "type": "object",
    "required": _STEP_REQUIRED,
    "additionalProperties": False,
    "properties": _STEP_FIELDS,
}
_STEP_ATTEMPT: Obj = {
    "type": "object",
    "required": ["attempt", "flowRunAttempt", "startedAt", "completedAt", "error"],
    "additionalProperties": False,
    "properties": {
        "attempt": _INT,
        "flowRunAttempt": _INT,
        "startedAt": TIME,
        "completedAt": TIME,
        "error": _STR,
    },
}
_STEP_DETAILS: Obj = {
    "type": "object",
    "required": [*_STEP_REQUIRED, "attempts"],
    "additionalProperties": False,
    "properties": {
        **_STEP_FIELDS,
        "attempts": {"type": "array", "items": _STEP_ATTEMPT},
        "input": {},
        "result": {},
        "error": _STR,
    },
}
_START: Obj = {
    "type": "object",
    "required": ["flow"],
    "properties": {
        "flow": TASK_REF,
        "input": _INPUT,
        "idempotencyKey": text(200, min_length=1),
    },
}


def _items(key: str, schema: Obj) -> Obj:
    item = {
        "type": "object",
        "required": [key, "cursor"],
        "properties": {key: schema, "cursor": _STR},
    }
    return json_answer({"type": "array", "items": item})


def paths() -> Obj:
    run_id = path("flowRunId")
    filters = [
        query("status", {"type": "array", "items": _STATUS}, "repeat or comma-separate"),
        query("flowSlug", TEXTS),
        query("flowId", TEXTS),
        query("workflowId", TEXTS),
        query("workflowVersionId", TEXTS),
        OWNER,
    ]
    steps_page = [
        query("cursor", {**_SEQ, "minimum": 0}, "the previous page's last seq"),
        query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
    ]
    return {
        "/v1/flow-runs": {
            "post": operation(
                "Start a flow run",
                {"202": json_answer(_RUN, "started")},
                *WRITE_ERRORS,
                429,
                requestBody=json_body(_START),
            ),
            "get": operation(
                "List flow runs, newest first",
                {"200": _items("flowRun", _RUN)},
                parameters=[*PAGE, *filters],
            ),
        },
        "/v1/flow-runs/{flowRunId}": {
            "get": operation(
                "A flow run's details",
                {"200": json_answer(_RUN_DETAILS)},
                parameters=[run_id],
            ),
            "delete": operation(
                "Cancel a flow run: its sleep ends, its detached steps' runs are cancelled",
                {"204": {"description": "done"}},
                403,
                parameters=[run_id],
            ),
        },
        "/v1/flow-runs/{flowRunId}/rerun": {
            "post": operation(
                "Rerun a failed flow run from its failed step (Conveyor's addition): a new "
                "attempt replays the steps that succeeded",
                {"202": json_answer(_RUN, "rerun")},
                *WRITE_ERRORS,
                409,
                parameters=[run_id],
                requestBody=json_body({"type": "object"}),  # `{}`: every write is JSON
            ),
        },
        "/v1/flow-runs/{flowRunId}/steps": {
            "get": operation(
                "A flow run's steps by seq",
                {"200": _items("step", _STEP)},
                parameters=[run_id, *steps_page],
            ),
        },
        "/v1/flow-runs/{flowRunId}/steps/{seq}": {
            "get": operation(
                "One step, with its input, result and failed tries",
                {"200": json_answer(_STEP_DETAILS)},
                parameters=[run_id, path("seq", _SEQ)],
            ),
        },
        "/v1/flows": {
            "get": operation(
                "The flows of each workflow's active version",
                {"200": _items("flow", _FLOW)},
                parameters=[
                    *PAGE,
                    query("flowSlug", TEXTS),
                    query("workflowId", TEXTS),
                    query("workflowVersionId", TEXTS),
                    OWNER,
                ],
            ),
        },
        "/v1/flows/{flowId}": {
            "get": operation("A flow", {"200": json_answer(_FLOW)}, parameters=[path("flowId")]),
        },
    }
