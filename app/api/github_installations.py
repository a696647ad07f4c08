"""GitHub App installations and the workspaces that own them.

- `GET /v1/github/install-link`: the App's install link, with a signed `state` naming the
  caller's workspace.
- `GET /github/setup`: where GitHub sends the browser back (the App's "Setup URL"); connects the
  new installation to the workspace of the `state` (app/github/setup_state.py).
- `GET /v1/github/installations`: the caller's workspace's installations (an admin key: every
  workspace's, or `?workspaceId=`).
- `PUT` / `DELETE /v1/github/installations/{id}/workspaces/{workspaceId}`: operators (admin keys)
  connect and disconnect installations, existing ones included.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api import serialize
from app.api.accounts import record_change
from app.api.auth import admin_of, caller_of, workspace_of
from app.api.body import read_json_body
from app.api.params import single_param
from app.api.responses import JSONResponse
from app.api.state import app_state
from app.builds import build_services_of
from app.github.installations import Connection, InstallationOwners
from app.github.setup_state import issue_state, read_state
from core.errors import Forbidden, InvalidRequest, NotFound

# GitHub's clock and ours may differ a little: an installation made just before the state
# was issued (by this much) still counts as made after it
_CLOCK_LEEWAY = timedelta(seconds=60)
_MAX_BODY = 1024


def _owners(request: Request) -> InstallationOwners:
    return InstallationOwners(app_state(request).runtime.store.sessions)


def connection_json(connection: Connection) -> dict[str, Any]:
    return {
        "installationId": connection.installation_id,
        "workspaceId": connection.workspace_id,
        "account": connection.account,
        "repositories": list(connection.repositories),
        "active": connection.active,
        "connectedAt": serialize.timestamp(connection.connected_at),
        "connectedBy": connection.connected_by,
    }


def _webhook_secret(request: Request) -> str:
    secret = app_state(request).runtime.settings.github.webhook_secret
    if not secret:
        raise NotFound("the GitHub App is not configured (CONVEYOR_GITHUB__WEBHOOK_SECRET)")
    return secret


def _installation_id(raw: str | None) -> int:
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise InvalidRequest("installation_id must be a GitHub installation id (digits)")
    return int(raw)


async def install_link(request: Request) -> Response:
    workspace = await workspace_of(request)
    settings = app_state(request).runtime.settings.github
    secret = _webhook_secret(request)
    if not settings.app_slug:
        raise NotFound("set CONVEYOR_GITHUB__APP_SLUG (the App's name in its URL) first")
    now = datetime.now(UTC)
    state = issue_state(secret, workspace, now)
    query = urlencode({"state": state})
    url = f"{settings.web_url.rstrip('/')}/apps/{settings.app_slug}/installations/new?{query}"
    expires = now + timedelta(seconds=settings.setup_state_seconds)
    return JSONResponse({"url": url, "expiresAt": serialize.timestamp(expires)})


async def setup(request: Request) -> Response:
    settings = app_state(request).runtime.settings.github
    secret = _webhook_secret(request)
    github = build_services_of(request).github
    if github is None:
        raise NotFound("the GitHub App is not configured (CONVEYOR_GITHUB__APP_ID, a private key)")
    installation_id = _installation_id(request.query_params.get("installation_id"))
    state = read_state(
        secret,
        request.query_params.get("state", ""),
        datetime.now(UTC),
        settings.setup_state_seconds,
    )
    created = await github.installation_created_at(installation_id)
    if created is None:
        raise NotFound(f"GitHub knows no installation {installation_id} of this App")
    if created < state.issued_at - _CLOCK_LEEWAY:
        raise Forbidden(
            f"installation {installation_id} was made before this install link was issued; "
            "an operator connects existing installations (`conveyor github connect`)"
        )
    connection = await _owners(request).connect(
        installation_id, state.workspace_id, by="setup", exclusive=True
    )
    await record_change(
        request,
        state.workspace_id,
        "installation.connected",
        str(installation_id),
        {"by": "setup", "setupAction": request.query_params.get("setup_action")},
    )
    return JSONResponse({"status": "connected", **connection_json(connection)})


async def list_installations(request: Request) -> Response:
    caller = await caller_of(request)
    workspace: str | None = caller.workspace_id
    wanted = single_param(request, "workspaceId")
    if caller.admin:
        workspace = wanted
    elif wanted is not None and wanted != caller.workspace_id:
        raise Forbidden("only an admin key may name another workspace")
    connections = await _owners(request).connections(workspace)
    return JSONResponse([connection_json(c) for c in connections])


def _target(request: Request) -> tuple[int, str]:
    return (
        _installation_id(request.path_params["installation_id"]),
        request.path_params["workspace_id"],
    )


async def connect(request: Request) -> Response:
    caller = await admin_of(request)
    installation_id, workspace = _target(request)
    # like every write, a JSON body (so no web page can send it): here an empty object
    body = await read_json_body(request, _MAX_BODY)
    if body != {}:
        raise InvalidRequest("the body must be an empty JSON object: {}")
    connection = await _owners(request).connect(
        installation_id, workspace, by=caller.actor.name, exclusive=False
    )
    await record_change(
        request, workspace, "installation.connected", str(installation_id), {"by": "api"}
    )
    return JSONResponse(connection_json(connection))


async def disconnect(request: Request) -> Response:
    await admin_of(request)
    installation_id, workspace = _target(request)
    await _owners(request).disconnect(installation_id, workspace)
    await record_change(
        request, workspace, "installation.disconnected", str(installation_id), {"by": "api"}
    )
    return Response(status_code=204)


_ONE = "/v1/github/installations/{installation_id}/workspaces/{workspace_id}"

routes = [
    Route("/v1/github/install-link", install_link, methods=["GET"]),
    Route("/github/setup", setup, methods=["GET"]),
    Route("/v1/github/installations", list_installations, methods=["GET"]),
    Route(_ONE, connect, methods=["PUT"]),
    Route(_ONE, disconnect, methods=["DELETE"]),
]
