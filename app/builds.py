"""The build side of the app: catalog, pipeline and GitHub App, made once per application."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from app.api.state import app_state
from app.github.app_client import GitHubApp
from app.github.checks import GitHubChecks
from app.github.installations import InstallationOwners, WorkspaceInstallations
from builder.base import Builder
from builder.catalog import WorkflowCatalog
from builder.execution import BuildExecution, ExecutionServices
from builder.pipeline import BuildPipeline
from builder.repo_policy import repo_policy
from builder.reporter import BuildReporter, NoReporter
from builder.step_sandbox import build_step_sandbox
from builder.venv import VenvBuilder
from core.secrets import SecretBox
from core.settings import Settings

if TYPE_CHECKING:
    from scheduler.runtime import Runtime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildServices:
    catalog: WorkflowCatalog
    pipeline: BuildPipeline
    github: GitHubApp | None


def make_builder(runtime: Runtime) -> Builder:
    settings = runtime.settings
    if settings.builds.builder == "venv":
        return VenvBuilder(
            settings.data_dir / "venvs",
            settings.builds,
            pass_env=settings.executor.pass_env,
            sandbox=build_step_sandbox(runtime.sandbox),
        )
    if settings.builds.builder == "buildkit":
        from builder.buildkit import BuildKitBuilder  # python-on-whales only when chosen

        return BuildKitBuilder(settings)
    raise ValueError(f"unknown builder {settings.builds.builder!r} (venv or buildkit)")


def github_reporting(settings: Settings) -> tuple[GitHubApp | None, BuildReporter]:
    """The GitHub App (tokens to fetch private repositories) and check-run reporting, when
    `CONVEYOR_GITHUB__*` configure an app."""
    if settings.github.app_id is not None and settings.github.private_key_pem():
        github = GitHubApp(settings.github)
        return github, GitHubChecks(github, settings.github.check_run_name)
    return None, NoReporter()


def make_build_execution(runtime: Runtime) -> BuildExecution:
    """What a `conveyor builder` runs claimed builds with."""
    github, reporter = github_reporting(runtime.settings)
    services = ExecutionServices(
        runtime.settings,
        runtime.store.sessions,
        runtime.store.blobs,
        runtime.registrar,
        make_builder(runtime),
        reporter,
        github,
    )
    return BuildExecution(services)


def make_build_services(runtime: Runtime) -> BuildServices:
    settings = runtime.settings
    github, reporter = github_reporting(settings)
    pipeline = BuildPipeline(
        settings,
        runtime.store.sessions,
        runtime.store.blobs,
        runtime.registrar,
        make_builder(runtime),
        reporter=reporter,
        tokens=github,
    )
    owners = InstallationOwners(runtime.store.sessions)
    catalog = WorkflowCatalog(
        runtime.store.sessions,
        SecretBox.from_settings(settings),
        repo_policy(settings),
        WorkspaceInstallations(owners, github),
    )
    return BuildServices(catalog, pipeline, github)


def build_services_of(request: Request) -> BuildServices:
    """This application's build services, made on first use (no I/O at app creation)."""
    services: BuildServices | None = getattr(request.app.state, "builds", None)
    if services is None:
        services = make_build_services(app_state(request).runtime)
        request.app.state.builds = services
    return services
