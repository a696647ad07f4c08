"""Builds and workflow sources as values: what the API, the CLI and the reporters see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from core.db.models import Build


class BuildStatus(StrEnum):
    """A build's life (its version's status says more: build or registration failure)."""

    QUEUED = "queued"  # recorded, waiting for a builder slot
    RUNNING = "running"  # fetching, building or registering
    SUCCEEDED = "succeeded"  # the version is ready and active
    FAILED = "failed"  # the version is build_failed or registration_failed


@dataclass(frozen=True)
class BuildInfo:
    id: str
    workflow_id: str
    version_id: str
    status: BuildStatus
    trigger: str
    commit_sha: str | None
    builder: str
    message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    builder_id: str | None = None  # the `conveyor builder` that ran it; None: in-process
    builder_name: str | None = None
    attempts: int = 0  # builders that started it (more than one: taken over or handed back)
    takeovers: int = 0  # times it was taken over from a builder that vanished


def build_info(row: Build, builder_name: str | None = None) -> BuildInfo:
    return BuildInfo(
        id=row.id,
        workflow_id=row.workflow_id,
        version_id=row.version_id,
        status=BuildStatus(row.status),
        trigger=row.trigger,
        commit_sha=row.commit_sha,
        builder=row.builder,
        message=row.message,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        builder_id=row.builder_id,
        builder_name=builder_name,
        attempts=row.attempts or 0,
        takeovers=row.takeovers or 0,
    )


def repo_full_name(repo_url: str) -> str | None:
    """`owner/name` from the URL's last two path parts (GitHub's shape; file:// in tests)."""
    try:
        parts = [p for p in urlsplit(repo_url).path.split("/") if p]
    except ValueError:  # e.g. an unclosed `[` where an IPv6 host would be
        return None
    if len(parts) < 2:
        return None
    name = parts[-1].removesuffix(".git")
    return f"{parts[-2]}/{name}".lower() if name else None
