"""Build progress as a GitHub check run on the pushed commit."""

from __future__ import annotations

from datetime import UTC, datetime

from app.github.app_client import GitHubApp
from builder.records import repo_full_name
from builder.reporter import BuildContext, BuildOutcome

# GitHub's limit on a check run's output.summary.
_SUMMARY_LIMIT = 65535


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class GitHubChecks:
    """`queued` on trigger, `in_progress` when building, `completed` with the outcome."""

    def __init__(self, app: GitHubApp, name: str) -> None:
        self._app = app
        self._name = name

    def _target(self, build: BuildContext) -> tuple[str, str] | None:
        if build.installation_id is None or build.repo_url is None or not build.commit_sha:
            return None
        full_name = repo_full_name(build.repo_url)
        if full_name is None:
            return None
        owner, _, repo = full_name.partition("/")
        return owner, repo

    async def queued(self, build: BuildContext) -> int | None:
        target = self._target(build)
        if target is None or build.installation_id is None or build.commit_sha is None:
            return None
        github = await self._app.installation_client(build.installation_id)
        response = await github.rest.checks.async_create(
            *target,
            name=self._name,
            head_sha=build.commit_sha,
            status="queued",
            external_id=build.build_id,
        )
        return response.parsed_data.id

    async def started(self, build: BuildContext) -> None:
        target = self._target(build)
        if target is None or build.check_run_id is None or build.installation_id is None:
            return
        github = await self._app.installation_client(build.installation_id)
        owner, repo = target
        await github.rest.checks.async_update(
            owner, repo, build.check_run_id, status="in_progress", started_at=_now()
        )

    async def finished(self, build: BuildContext, outcome: BuildOutcome) -> None:
        target = self._target(build)
        if target is None or build.check_run_id is None or build.installation_id is None:
            return
        github = await self._app.installation_client(build.installation_id)
        owner, repo = target
        await github.rest.checks.async_update(
            owner,
            repo,
            build.check_run_id,
            status="completed",
            conclusion="success" if outcome.succeeded else "failure",
            completed_at=_now(),
            output={"title": outcome.title[:255], "summary": outcome.summary[-_SUMMARY_LIMIT:]},
        )
