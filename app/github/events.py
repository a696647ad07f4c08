"""What each GitHub webhook event does: pushes build, installations are recorded."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.builds import BuildServices
from app.github.installations import record_installation
from core.errors import InvalidRequest

logger = logging.getLogger(__name__)

_NO_COMMIT = "0" * 40
_INACTIVE_ACTIONS = frozenset({"deleted", "suspend"})


def _field(payload: dict[str, Any], *path: str) -> Any:
    value: Any = payload
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise InvalidRequest(f"payload has no {'.'.join(path)}")
        value = value[key]
    return value


def _str_field(payload: dict[str, Any], *path: str) -> str:
    value = _field(payload, *path)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"payload's {'.'.join(path)} must be a non-empty string")
    return value


def _installation_id(payload: dict[str, Any]) -> int | None:
    installation = payload.get("installation")
    if isinstance(installation, dict) and isinstance(installation.get("id"), int):
        return int(installation["id"])
    return None


def _names(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(i["full_name"]).lower() for i in items if isinstance(i, dict) and "full_name" in i]


async def on_push(services: BuildServices, payload: dict[str, Any]) -> dict[str, Any]:
    """Builds the pushed commit for the workflows of the workspaces that own the installation.

    A commit already built for a workflow builds nothing new, whatever the delivery: the answer
    names the existing build.
    """
    ref = _str_field(payload, "ref")
    after = _str_field(payload, "after")
    full_name = _str_field(payload, "repository", "full_name")
    if not ref.startswith("refs/heads/") or payload.get("deleted") or after == _NO_COMMIT:
        return {"status": "ignored", "reason": "not a new commit on a branch"}
    installation_id = _installation_id(payload)
    if installation_id is None:
        return {"status": "ignored", "reason": "the push names no installation of the app"}
    branch = ref.removeprefix("refs/heads/")
    builds: list[str] = []
    existing: list[str] = []
    for workspace_id, workflow_id in await services.catalog.tracking(
        installation_id, full_name, branch
    ):
        await services.catalog.set_installation(workflow_id, installation_id)
        build, new = await services.pipeline.trigger_push(workspace_id, workflow_id, after)
        (builds if new else existing).append(build.id)
    logger.info(
        "push to %s@%s (%s) from installation %d: %d builds, %d already built",
        full_name,
        branch,
        after,
        installation_id,
        len(builds),
        len(existing),
    )
    return {"status": "accepted", "builds": builds, "existingBuilds": existing}


async def on_installation(
    services: BuildServices, payload: dict[str, Any], sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Any]:
    installation_id = _field(payload, "installation", "id")
    if not isinstance(installation_id, int):
        raise InvalidRequest("payload's installation.id must be an integer")
    action = _str_field(payload, "action")
    account = payload["installation"].get("account") or {}
    await record_installation(
        sessions,
        installation_id,
        account=account.get("login") if isinstance(account, dict) else None,
        active=action not in _INACTIVE_ACTIONS,
        repositories=_names(payload["repositories"]) if "repositories" in payload else None,
        added=_names(payload.get("repositories_added")),
        removed=_names(payload.get("repositories_removed")),
    )
    return {"status": "recorded", "installation": installation_id, "action": action}
