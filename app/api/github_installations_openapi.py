"""The OpenAPI paths of GitHub App installations (app/api/github_installations.py)."""

from __future__ import annotations

from app.api.openapi_parts import (
    ONE_VALUE,
    TIME,
    WRITE_ERRORS,
    Obj,
    json_answer,
    json_body,
    operation,
    path,
    query,
)

_STR: Obj = {"type": "string"}
_INSTALLATION_ID: Obj = {"type": "string", "pattern": "^[0-9]{1,18}$"}
_CONNECTION_PROPERTIES: Obj = {
    "installationId": {"type": "integer"},
    "workspaceId": _STR,
    "account": {"type": ["string", "null"], "description": "null until GitHub's webhook told"},
    "repositories": {"type": "array", "items": _STR},
    "active": {"type": "boolean"},
    "connectedAt": TIME,
    "connectedBy": _STR,
}
_CONNECTION: Obj = {
    "type": "object",
    "required": list(_CONNECTION_PROPERTIES),
    "additionalProperties": False,
    "properties": _CONNECTION_PROPERTIES,
}
_CONNECTED: Obj = {
    **_CONNECTION,
    "required": [*_CONNECTION["required"], "status"],
    "properties": {**_CONNECTION_PROPERTIES, "status": {"enum": ["connected"]}},
}
_LINK: Obj = {
    "type": "object",
    "required": ["url", "expiresAt"],
    "additionalProperties": False,
    "properties": {"url": _STR, "expiresAt": TIME},
}


def paths() -> Obj:
    one = [path("installation_id", _INSTALLATION_ID), path("workspace_id")]
    return {
        "/v1/github/install-link": {
            "get": operation(
                "The GitHub App's install link for the caller's workspace (a signed state)",
                {"200": json_answer(_LINK)},
            ),
        },
        "/github/setup": {
            "get": operation(
                "The App's setup URL: GitHub sends the browser here after an install; the "
                "installation is connected to the workspace the state names",
                {"200": json_answer(_CONNECTED)},
                403,
                409,
                parameters=[
                    query("installation_id", _INSTALLATION_ID, required=True),
                    query("setup_action", ONE_VALUE),
                    query("state", ONE_VALUE, "from the install link", required=True),
                ],
                security=[],
            ),
        },
        "/v1/github/installations": {
            "get": operation(
                "The workspace's installations (an admin key: every workspace's)",
                {"200": json_answer({"type": "array", "items": _CONNECTION})},
                403,
                parameters=[query("workspaceId", ONE_VALUE, "another workspace (admin keys)")],
            ),
        },
        "/v1/github/installations/{installation_id}/workspaces/{workspace_id}": {
            "put": operation(
                "Connect an installation to a workspace (admin keys only)",
                {"200": json_answer(_CONNECTION)},
                *WRITE_ERRORS,
                parameters=one,
                requestBody=json_body(
                    {"type": "object", "additionalProperties": False, "maxProperties": 0}
                ),
            ),
            "delete": operation(
                "Disconnect an installation from a workspace (admin keys only)",
                {"204": {"description": "disconnected"}},
                403,
                parameters=one,
            ),
        },
    }
