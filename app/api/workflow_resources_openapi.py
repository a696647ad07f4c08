"""The OpenAPI paths of workflow resources, builds and the GitHub webhook (docs/builds.md)."""

from __future__ import annotations

from app.api.openapi_parts import (
    NOT_BLANK,
    ONE_VALUE,
    OWNER,
    PAGE,
    TEXT,
    TEXTS,
    TIME,
    WRITE_ERRORS,
    Obj,
    json_answer,
    json_body,
    operation,
    path,
    query,
    ref,
    text,
)
from builder.catalog import REPO_URL_PATTERN

_STR: Obj = {"type": "string"}
# What builder.catalog.check_changes and the columns accept, field by field.
_ENV_NAME: Obj = {
    "type": "string",
    "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
    "not": {"pattern": "^(?:RENDER_SDK_|CONVEYOR_)"},
}
_ENV_VALUE: Obj = {"type": ["string", "null"], "pattern": "^[^\\u0000]*$"}
_FIELDS: Obj = {
    "name": text(200),
    "slug": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,99}$"},
    "repo": {"type": "string", "pattern": REPO_URL_PATTERN, "maxLength": 2000},
    "branch": text(255),
    "rootDir": {
        **TEXT,
        "description": "a relative path inside the repository",
        "not": {"anyOf": [{"pattern": "^/"}, {"pattern": "(?:^|/)\\.\\.(?:/|$)"}]},
    },
    "buildCommand": TEXT,
    "startCommand": text(pattern=NOT_BLANK),
    "runCommand": text(pattern=NOT_BLANK),
    "runtime": {"enum": ["python", "node"]},
    "envVars": {
        "description": "`{NAME: value}` or Render's `[{key, value}]`; null removes (PATCH)",
        "oneOf": [
            {"type": "object", "propertyNames": _ENV_NAME, "additionalProperties": _ENV_VALUE},
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key"],
                    "properties": {"key": _ENV_NAME, "value": _ENV_VALUE},
                },
            },
        ],
    },
}
_CHANGES: Obj = {"type": "object", "properties": _FIELDS, "additionalProperties": False}
_NEW_WORKFLOW: Obj = {
    **_CHANGES,
    "required": ["repo"],
    "description": "a `name` or a `slug` (the slug defaults to the name's)",
    "anyOf": [
        {"required": ["slug"]},
        {"required": ["name"], "properties": {"name": {"minLength": 1}}},
    ],
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
_BUILD_STATUS = ["queued", "running", "succeeded", "failed"]
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
                "builderId",
                "builderName",
            )
        },
        "attempts": {"type": "integer", "minimum": 2},
        "message": _STR,
        **{k: TIME for k in ("createdAt", "startedAt", "finishedAt")},
        "status": {"enum": _BUILD_STATUS},
    },
}
_DEPLOY: Obj = {
    "type": "object",
    "properties": {"commitId": {"type": "string", "pattern": "^[0-9a-f]{40}$"}},
}


def _items(key: str, schema: Obj) -> Obj:
    properties = {key: schema, "cursor": _STR}
    item = {"type": "object", "required": [key, "cursor"], "properties": properties}
    return json_answer({"type": "array", "items": item})


def paths() -> Obj:
    workflow = [path("workflow_id")]
    build = [path("build_id")]
    log = {"description": "the build log", "content": {"text/plain": {"schema": _STR}}}
    signature = {
        "name": "X-Hub-Signature-256",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
    }
    return {
        "/v1/workflows": {
            "get": operation(
                "Workflows, oldest first",
                {"200": _items("workflow", ref("Workflow"))},
                parameters=[
                    *PAGE,
                    query("name", TEXTS, "a workflow's name or slug"),
                    query("workflowID", TEXTS, "Render's spelling; workflowId also works"),
                    query("workflowId", TEXTS),
                    OWNER,
                    query("environmentId", TEXTS, "ignored: a workspace has no environments"),
                ],
            ),
            "post": operation(
                "Create a workflow from a git repository (deploy it to build)",
                {"201": json_answer(_WORKFLOW, "created")},
                *WRITE_ERRORS,
                409,
                requestBody=json_body(_NEW_WORKFLOW),
            ),
        },
        "/v1/workflows/{workflow_id}": {
            "get": operation(
                "A workflow (id or slug)", {"200": json_answer(_WORKFLOW)}, 409, parameters=workflow
            ),
            "patch": operation(
                "Change a workflow (its slug cannot change: 409)",
                {"200": json_answer(_WORKFLOW)},
                *WRITE_ERRORS,
                409,
                parameters=workflow,
                requestBody=json_body(_CHANGES),
            ),
            "delete": operation(
                "Delete a workflow without runs",
                {"204": {"description": "deleted"}},
                403,
                409,
                parameters=workflow,
            ),
        },
        "/v1/workflows/{workflow_id}/deploy": {
            "post": operation(
                "Build a commit (`{}`: the branch's head); 409 without a readable repository",
                {"202": json_answer(_BUILD, "build started")},
                *WRITE_ERRORS,
                409,
                parameters=workflow,
                requestBody=json_body(_DEPLOY),
            ),
        },
        "/v1/workflows/{workflow_id}/versions": {
            "get": operation(
                "The workflow's versions, newest first",
                {"200": _items("workflowVersion", ref("WorkflowVersion"))},
                parameters=[*workflow, *PAGE],
            ),
        },
        "/v1/builds": {
            "get": operation(
                "Builds, newest first",
                {"200": _items("build", _BUILD)},
                parameters=[query("workflowId", ONE_VALUE)],
            ),
        },
        "/v1/builds/{build_id}": {
            "get": operation("A build", {"200": json_answer(_BUILD)}, parameters=build),
        },
        "/v1/builds/{build_id}/logs": {
            "get": operation(
                "A build's log (follow=true streams it until the build ends)",
                {"200": log},
                parameters=[*build, query("follow", {"type": "boolean"})],
            ),
        },
        "/github/webhook": {
            "post": operation(
                "GitHub App webhook: a 401 unless X-Hub-Signature-256 signs the body",
                {"200": json_answer({"type": "object"})},
                409,
                413,
                429,
                parameters=[signature],
                requestBody=json_body({"type": "object"}),
                security=[],
            ),
        },
    }
