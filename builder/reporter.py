"""Where a build's progress is reported outside Conveyor (GitHub check runs): one Protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class BuildContext:
    build_id: str
    workflow_slug: str
    repo_url: str | None
    commit_sha: str | None
    installation_id: int | None
    check_run_id: int | None = None


@dataclass(frozen=True)
class BuildOutcome:
    succeeded: bool
    title: str
    summary: str  # the tasks found, or the log's tail


class BuildReporter(Protocol):
    async def queued(self, build: BuildContext) -> int | None:
        """Announce the build; returns the external id to pass back later (a check run)."""
        ...

    async def started(self, build: BuildContext) -> None: ...

    async def finished(self, build: BuildContext, outcome: BuildOutcome) -> None: ...


class TokenSource(Protocol):
    async def token_for(self, installation_id: int) -> str:
        """A short-lived token that may read the installation's repositories."""
        ...


class NoReporter:
    """Reports nothing: builds from a folder or a repository outside any GitHub App."""

    async def queued(self, build: BuildContext) -> int | None:
        return None

    async def started(self, build: BuildContext) -> None:
        return None

    async def finished(self, build: BuildContext, outcome: BuildOutcome) -> None:
        return None
