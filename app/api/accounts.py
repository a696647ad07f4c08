"""`/v1/api-keys`, `/v1/workspaces` and `/v1/audit-events`: who may call, and what they changed.

A key manages its own workspace's keys; an admin key (scope `admin`) also names another
workspace with `workspaceId`, creates admin keys, and creates and lists workspaces. Every
change is written to the audit trail with the key that made it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api import serialize
from app.api.auth import Caller, admin_of, caller_of
from app.api.body import read_json_body
from app.api.json_input import check_text
from app.api.params import int_param, single_param
from app.api.responses import JSONResponse
from app.api.state import app_state
from core.audit import Actor, AuditAction, AuditEntry, AuditLog
from core.auth import KeyInfo
from core.errors import Forbidden, InvalidRequest, NotFound
from core.workspaces import WorkspaceInfo, Workspaces

_MAX_BODY = 16 * 1024
MAX_EXPIRY_DAYS = 3650
MAX_WORKSPACE_CONCURRENCY = 10_000


def audit_log(request: Request) -> AuditLog:
    return AuditLog(app_state(request).runtime.store.sessions)


def _workspaces(request: Request) -> Workspaces:
    return Workspaces(app_state(request).runtime.store.sessions)


def key_json(key: KeyInfo, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    status = "active"
    if key.revoked_at is not None:
        status = "revoked"
    elif key.expires_at is not None and key.expires_at <= now:
        status = "expired"
    out: dict[str, Any] = {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "workspaceId": key.workspace_id,
        "scopes": ["admin"] if key.admin else [],
        "status": status,
        "createdAt": serialize.timestamp(key.created_at),
    }
    for field, value in (
        ("lastUsedAt", key.last_used_at),
        ("expiresAt", key.expires_at),
        ("revokedAt", key.revoked_at),
    ):
        if value is not None:
            out[field] = serialize.timestamp(value)
    return out


def workspace_json(workspace: WorkspaceInfo) -> dict[str, Any]:
    return {
        "id": workspace.id,
        "name": workspace.name,
        "maxConcurrency": workspace.max_concurrency,
        "createdAt": serialize.timestamp(workspace.created_at),
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(entry.id),
        "at": serialize.timestamp(entry.at),
        "actor": entry.actor.name,
        "action": entry.action,
        "target": entry.target,
        "details": entry.details,
    }
    if entry.actor.key_prefix:
        out["actorKeyPrefix"] = entry.actor.key_prefix
    return out


async def _target_workspace(request: Request, caller: Caller, named: str | None) -> str:
    """The caller's workspace, or another one an admin key names."""
    if named is None or named == caller.workspace_id:
        return caller.workspace_id
    if not caller.admin:
        raise Forbidden("only an admin key may name another workspace")
    if not await _workspaces(request).exists(named):
        raise NotFound(f"workspace {named!r} not found")
    return named


def _object(body: Any, known: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(unknown)}")
    return body


def _name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("'name' must be a non-empty string")
    return check_text(name, "'name'", 200)


def _bounded_int(body: dict[str, Any], field: str, high: int) -> int | None:
    if field not in body:
        return None
    value = body[field]
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 7.0 is the integer 7
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
        raise InvalidRequest(f"'{field}' must be an integer from 1 to {high}")
    return value


async def create_key(request: Request) -> Response:
    caller = await caller_of(request)
    body = _object(
        await read_json_body(request, _MAX_BODY), {"name", "expiresInDays", "workspaceId", "admin"}
    )
    name = _name(body)
    days = _bounded_int(body, "expiresInDays", MAX_EXPIRY_DAYS)
    admin = body.get("admin", False)
    if not isinstance(admin, bool):
        raise InvalidRequest("'admin' must be true or false")
    if admin and not caller.admin:
        raise Forbidden("only an admin key may create an admin key")
    named = body.get("workspaceId")
    if "workspaceId" in body and not isinstance(named, str):
        raise InvalidRequest("'workspaceId' must be a string")
    if named is not None:
        check_text(named, "'workspaceId'")
    workspace = await _target_workspace(request, caller, named)
    expires = datetime.now(UTC) + timedelta(days=days) if days else None
    created = await app_state(request).runtime.keys.create(
        workspace, name, expires_at=expires, admin=admin
    )
    await audit_log(request).record(
        workspace,
        caller.actor,
        "key.created",
        created.id,
        {"name": name, "prefix": created.info.prefix, "admin": admin, "expiresInDays": days},
    )
    return JSONResponse({**key_json(created.info), "secret": created.secret}, status_code=201)


async def list_keys(request: Request) -> Response:
    caller = await caller_of(request)
    workspace = await _target_workspace(request, caller, single_param(request, "workspaceId"))
    keys = await app_state(request).runtime.keys.list(workspace)
    now = datetime.now(UTC)
    return JSONResponse([{"apiKey": key_json(k, now), "cursor": k.id} for k in keys])


async def revoke_key(request: Request) -> Response:
    caller = await caller_of(request)
    key_id = request.path_params["key_id"]
    keys = app_state(request).runtime.keys
    owner = caller.workspace_id
    if caller.admin:  # an admin key reaches every workspace's keys
        owner = await keys.workspace_of_key(key_id) or owner
    revoked = await keys.revoke(owner, key_id)
    await audit_log(request).record(
        owner, caller.actor, "key.revoked", key_id, {"name": revoked.name, "prefix": revoked.prefix}
    )
    return Response(status_code=204)


async def create_workspace(request: Request) -> Response:
    caller = await admin_of(request)
    body = _object(await read_json_body(request, _MAX_BODY), {"name", "maxConcurrency"})
    name = _name(body)
    limit = _bounded_int(body, "maxConcurrency", MAX_WORKSPACE_CONCURRENCY)
    settings = app_state(request).runtime.settings
    created = await _workspaces(request).create(name, limit or settings.limits.max_concurrency)
    details = {"name": name, "maxConcurrency": created.max_concurrency}
    for workspace in {caller.workspace_id, created.id}:
        await audit_log(request).record(
            workspace, caller.actor, "workspace.created", created.id, details
        )
    return JSONResponse(workspace_json(created), status_code=201)


async def list_workspaces(request: Request) -> Response:
    await admin_of(request)
    items = await _workspaces(request).list()
    return JSONResponse([{"workspace": workspace_json(w), "cursor": w.id} for w in items])


async def get_workspace(request: Request) -> Response:
    caller = await caller_of(request)
    workspace = await _target_workspace(request, caller, request.path_params["workspace_id"])
    found = await _workspaces(request).get(workspace)
    if found is None:
        raise NotFound(f"workspace {workspace} not found")
    return JSONResponse(workspace_json(found))


async def change_workspace(request: Request) -> Response:
    """A workspace's limits are data: changed here (or with `conveyor workspace set`), never by
    a process's setting, which only seeds a new workspace."""
    caller = await caller_of(request)
    workspace = await _target_workspace(request, caller, request.path_params["workspace_id"])
    body = _object(await read_json_body(request, _MAX_BODY), {"maxConcurrency"})
    limit = _bounded_int(body, "maxConcurrency", MAX_WORKSPACE_CONCURRENCY)
    if limit is None:
        raise InvalidRequest("maxConcurrency is required")
    await app_state(request).runtime.service.set_max_concurrency(workspace, limit)
    await audit_log(request).record(
        workspace, caller.actor, "workspace.changed", workspace, {"maxConcurrency": limit}
    )
    found = await _workspaces(request).get(workspace)
    assert found is not None
    return JSONResponse(workspace_json(found))


async def list_audit_events(request: Request) -> Response:
    caller = await caller_of(request)
    workspace = await _target_workspace(request, caller, single_param(request, "workspaceId"))
    limit = int_param(request, "limit", default=50, low=1, high=200)
    cursor = request.query_params.get("cursor") or None
    page = await audit_log(request).list(workspace, cursor=cursor, limit=limit)
    return JSONResponse(
        [{"auditEvent": audit_json(entry), "cursor": str(entry.id)} for entry in page.items]
    )


async def record_change(
    request: Request, workspace: str, action: AuditAction, target: str, details: dict[str, Any]
) -> None:
    """An audit event for a change the request's caller made (workflows use this)."""
    caller: Caller | None = getattr(request.state, "caller", None)
    actor = caller.actor if caller is not None else Actor("anonymous")
    await audit_log(request).record(workspace, actor, action, target, details)


routes = [
    Route("/v1/api-keys", create_key, methods=["POST"]),
    Route("/v1/api-keys", list_keys, methods=["GET"]),
    Route("/v1/api-keys/{key_id}", revoke_key, methods=["DELETE"]),
    Route("/v1/workspaces", create_workspace, methods=["POST"]),
    Route("/v1/workspaces", list_workspaces, methods=["GET"]),
    Route("/v1/workspaces/{workspace_id}", get_workspace, methods=["GET"]),
    Route("/v1/workspaces/{workspace_id}", change_workspace, methods=["PATCH"]),
    Route("/v1/audit-events", list_audit_events, methods=["GET"]),
]
