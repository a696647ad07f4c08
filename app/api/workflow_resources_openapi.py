"""The OpenAPI paths of workflow resources, builds and the GitHub webhook (docs/builds.md)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

_STR: Obj = {"type": "string"}
_ERROR: Obj = {"$ref": "#/components/schemas/Error"}
_WORKFLOW_BODY: Obj = {
    "type": "object",
    "properties": {
        **{
            name: _STR
            for name in (
                "name",
                "slug",
                "repo",
                "branch",
                "rootDir",
                "buildCommand",
                "startCommand",
                "runCommand",
                "runtime",
            )
        },
        "envVars": {
            "oneOf": [
                {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["key"],
                        "properties": {"key": _STR, "value": {"type": ["string", "null"]}},
                    },
                },
            ]
        },
    },
    "additionalProperties": False,
}
_WORKFLOW: Obj = {
    "type": "object",
    "required": ["id", "name", "slug", "ownerId", "createdAt", "updatedAt", "buildConfig"],
    "properties": {
        **{
            k: _STR
            for k in ("id", "name", "slug", "ownerId", "createdAt", "updatedAt", "runCommand")
        },
        **{k: _STR for k in ("rootDir", "activeVersionId", "branch", "region")},
        "autoDeployTrigger": {"enum": ["commit", "off"]},
        "envVarKeys": {"type": "array", "items": _STR},
        "buildConfig": {
            "type": "object",
            "properties": {
                k: _STR for k in ("buildCommand", "repo", "runtime", "branch", "rootDir")
            },
        },
    },
}
_BUILD: Obj = {
    "type": "object",
    "required": ["id", "workflowId", "workflowVersionId", "status", "trigger", "createdAt"],
    "properties": {
        **{
            k: _STR
            for k in (
                "id",
                "workflowId",
                "workflowVersionId",
                "trigger",
                "commitId",
                "builder",
                "message",
                "createdAt",
                "startedAt",
                "finishedAt",
            )
        },
        "status": {"enum": ["queued", "running", "succeeded", "failed"]},
    },
}


def _json(schema: Obj, description: str = "OK") -> Obj:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> Obj:
    return {str(s): _json(_ERROR, "error") for s in (400, 401, 404, 500, *statuses)}


def _path(name: str) -> Obj:
    return {"name": name, "in": "path", "required": True, "schema": _STR}


def _op(summary: str, responses: Obj, *extra_errors: int, **more: Any) -> Obj:
    return {"summary": summary, "responses": {**responses, **_errors(*extra_errors)}, **more}


def paths() -> Obj:
    workflow = [_path("workflow_id")]
    build = [_path("build_id")]
    body = {"required": True, "content": {"application/json": {"schema": _WORKFLOW_BODY}}}
    text = {"description": "the build log", "content": {"text/plain": {"schema": _STR}}}
    return {
        "/v1/workflows/{workflow_id}": {
            "get": _op("A workflow (id or slug)", {"200": _json(_WORKFLOW)}, parameters=workflow),
            "patch": _op(
                "Change a workflow",
                {"200": _json(_WORKFLOW)},
                parameters=workflow,
                requestBody=body,
            ),
            "delete": _op(
                "Delete a workflow without runs",
                {"204": {"description": "deleted"}},
                409,
                parameters=workflow,
            ),
        },
        "/v1/workflows/{workflow_id}/deploy": {
            "post": _op(
                "Build a commit (default: the branch's head)",
                {"202": _json(_BUILD, "build started")},
                parameters=workflow,
                requestBody={
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"commitId": _STR}}
                        }
                    },
                },
            ),
        },
        "/v1/workflows/{workflow_id}/versions": {
            "get": _op(
                "The workflow's versions, newest first",
                {"200": _json({"type": "array", "items": {"type": "object"}})},
                parameters=[
                    *workflow,
                    {"name": "cursor", "in": "query", "schema": _STR},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 20}},
                ],
            ),
        },
        "/v1/builds": {
            "get": _op(
                "Builds, newest first",
                {"200": _json({"type": "array", "items": {"type": "object"}})},
                parameters=[{"name": "workflowId", "in": "query", "schema": _STR}],
            ),
        },
        "/v1/builds/{build_id}": {
            "get": _op("A build", {"200": _json(_BUILD)}, parameters=build),
        },
        "/v1/builds/{build_id}/logs": {
            "get": _op(
                "A build's log (follow=true streams it until the build ends)",
                {"200": text},
                parameters=[
                    *build,
                    {"name": "follow", "in": "query", "schema": {"type": "boolean"}},
                ],
            ),
        },
        "/github/webhook": {
            "post": _op(
                "GitHub App webhook (X-Hub-Signature-256 required)",
                {"200": _json({"type": "object"})},
                409,
                security=[],
            ),
        },
    }
