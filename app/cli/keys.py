"""`conveyor keys create|list|revoke`: on the database directly, never over HTTP.

These are the operator's commands (the first key of a workspace has no key to make it with);
over HTTP the same is `/v1/api-keys`. Each change is in the audit trail as done by `cli`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from app.api.accounts import key_json
from app.cli import output
from app.cli.database import CLI, data_dir_option, on_database, workspace_option
from core.audit import AuditLog
from scheduler.runtime import Runtime


@click.group("keys")
def keys_group() -> None:
    """Manage API keys (on the server's database)."""


@keys_group.command("create")
@click.option("--name", default="cli", show_default=True, help="A label for the key.")
@click.option(
    "--expires-in-days", type=click.IntRange(1, 3650), help="Refused after this many days."
)
@click.option("--admin", is_flag=True, help="May create workspaces and manage every key.")
@workspace_option
@data_dir_option
def create_command(
    name: str, expires_in_days: int | None, admin: bool, workspace: str, data_dir: Path | None
) -> None:
    """Create a key; its secret is printed once, on stdout."""
    expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None

    async def create(runtime: Runtime) -> tuple[str, str, str]:
        created = await runtime.keys.create(workspace, name, expires_at=expires, admin=admin)
        details = {"name": name, "prefix": created.info.prefix, "admin": admin}
        await AuditLog(runtime.store.sessions).record(
            workspace, CLI, "key.created", created.id, {**details, "expiresInDays": expires_in_days}
        )
        return created.id, created.name, created.secret

    key_id, key_name, secret = on_database(data_dir, create)
    click.echo(secret)
    click.echo(
        f"created key {key_id} ({key_name}) for {workspace}; the secret above is shown only once",
        err=True,
    )


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@workspace_option
@data_dir_option
def list_command(as_json: bool, workspace: str, data_dir: Path | None) -> None:
    """The workspace's keys, newest first: prefix, name, status, dates (never a secret)."""

    async def listed(runtime: Runtime) -> list[dict[str, object]]:
        return [key_json(key) for key in await runtime.keys.list(workspace)]

    keys = on_database(data_dir, listed)
    if as_json:
        click.echo(output.to_json(keys, indent=2))
        return
    headers = ["ID", "PREFIX", "NAME", "STATUS", "CREATED", "LAST USED", "EXPIRES"]
    rows = [
        [
            str(key["id"]),
            str(key["prefix"]),
            str(key["name"]) + (" (admin)" if key["scopes"] else ""),
            str(key["status"]),
            *(output.short_time(_text(key.get(f))) for f in ("createdAt", "lastUsedAt")),
            output.short_time(_text(key.get("expiresAt"))),
        ]
        for key in keys
    ]
    click.echo(output.table(headers, rows))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@keys_group.command("revoke")
@click.argument("key_id")
@workspace_option
@data_dir_option
def revoke_command(key_id: str, workspace: str, data_dir: Path | None) -> None:
    """Revoke KEY_ID: every request with it is refused from now on."""

    async def revoke(runtime: Runtime) -> str:
        revoked = await runtime.keys.revoke(workspace, key_id)
        await AuditLog(runtime.store.sessions).record(
            workspace, CLI, "key.revoked", key_id, {"name": revoked.name, "prefix": revoked.prefix}
        )
        return revoked.name

    name = on_database(data_dir, revoke)
    click.echo(f"revoked key {key_id} ({name})", err=True)
