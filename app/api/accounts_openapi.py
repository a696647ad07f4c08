"""The OpenAPI paths of API keys, workspaces and the audit trail (app/api/accounts.py)."""

from __future__ import annotations

from app.api.openapi_parts import (
    ONE_VALUE,
    TEXT,
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
from core.audit import AUDIT_ACTIONS

_STR: Obj = {"type": "string"}
_KEY: Obj = {
    "type": "object",
    "required": ["id", "name", "prefix", "workspaceId", "scopes", "status", "createdAt"],
    "additionalProperties": False,
    "properties": {
        "id": _STR,
        "name": _STR,
        "prefix": {**_STR, "description": "the secret's first characters, to recognise it"},
        "workspaceId": _STR,
        "scopes": {"type": "array", "items": {"enum": ["admin"]}},
        "status": {"enum": ["active", "revoked", "expired"]},
        "createdAt": TIME,
        "lastUsedAt": {**TIME, "description": "to the minute"},
        "expiresAt": TIME,
        "revokedAt": TIME,
    },
}
_NEW_KEY: Obj = {
    **_KEY,
    "required": [*_KEY["required"], "secret"],
    "properties": {**_KEY["properties"], "secret": {**_STR, "description": "shown only once"}},
}
_KEY_REQUEST: Obj = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": text(200, min_length=1),
        "expiresInDays": {"type": "integer", "minimum": 1, "maximum": 3650},
        "workspaceId": {**TEXT, "description": "another workspace (admin keys only)"},
        "admin": {"type": "boolean", "description": "the admin scope (admin keys only)"},
    },
}
_WORKSPACE: Obj = {
    "type": "object",
    "required": ["id", "name", "maxConcurrency", "createdAt"],
    "additionalProperties": False,
    "properties": {
        "id": _STR,
        "name": _STR,
        "maxConcurrency": {"type": "integer"},
        "createdAt": TIME,
    },
}
_WORKSPACE_REQUEST: Obj = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": text(200, min_length=1),
        "maxConcurrency": {"type": "integer", "minimum": 1, "maximum": 10_000},
    },
}
_WORKSPACE_CHANGES: Obj = {
    "type": "object",
    "required": ["maxConcurrency"],
    "additionalProperties": False,
    "properties": {"maxConcurrency": {"type": "integer", "minimum": 1, "maximum": 10_000}},
}
_AUDIT_EVENT: Obj = {
    "type": "object",
    "required": ["id", "at", "actor", "action", "target", "details"],
    "additionalProperties": False,
    "properties": {
        "id": _STR,
        "at": TIME,
        "actor": {**_STR, "description": "`key:<id>`, `anonymous` (conveyor dev), `cli`"},
        "actorKeyPrefix": _STR,
        "action": {"enum": list(AUDIT_ACTIONS)},
        "target": _STR,
        "details": {"type": "object"},
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
    other_workspace = query("workspaceId", ONE_VALUE, "another workspace (admin keys only)")
    cursor = query("cursor", {"type": "string", "pattern": "^[0-9]{0,18}$"}, "the last id seen")
    limit = query("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50})
    return {
        "/v1/api-keys": {
            "get": operation(
                "The workspace's API keys, newest first (never their secrets)",
                {"200": _items("apiKey", _KEY)},
                403,
                parameters=[other_workspace],
            ),
            "post": operation(
                "Create an API key; its secret is in this answer only",
                {"201": json_answer(_NEW_KEY, "created")},
                *WRITE_ERRORS,
                requestBody=json_body(_KEY_REQUEST),
            ),
        },
        "/v1/api-keys/{key_id}": {
            "delete": operation(
                "Revoke a key: refused from now on (revoking again changes nothing)",
                {"204": {"description": "revoked"}},
                403,
                parameters=[path("key_id")],
            ),
        },
        "/v1/workspaces": {
            "get": operation(
                "Every workspace (admin keys only)", {"200": _items("workspace", _WORKSPACE)}, 403
            ),
            "post": operation(
                "Create a workspace (admin keys only); then create its first key",
                {"201": json_answer(_WORKSPACE, "created")},
                *WRITE_ERRORS,
                requestBody=json_body(_WORKSPACE_REQUEST),
            ),
        },
        "/v1/workspaces/{workspace_id}": {
            "get": operation(
                "A workspace: the key's own, or any for an admin key",
                {"200": json_answer(_WORKSPACE)},
                403,
                parameters=[path("workspace_id")],
            ),
            "patch": operation(
                "Change a workspace's limits (its concurrency): data, which no process's "
                "setting overrides",
                {"200": json_answer(_WORKSPACE)},
                *WRITE_ERRORS,
                parameters=[path("workspace_id")],
                requestBody=json_body(_WORKSPACE_CHANGES),
            ),
        },
        "/v1/audit-events": {
            "get": operation(
                "Changes to keys, workflows and workspaces, newest first",
                {"200": _items("auditEvent", _AUDIT_EVENT)},
                403,
                parameters=[other_workspace, cursor, limit],
            ),
        },
    }
