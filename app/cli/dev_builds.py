"""`conveyor dev`: build PATH with the embedded builder, register it, and again on each change."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click
from watchfiles import Change, DefaultFilter, awatch

from builder.base import BuildFailed, BuildRequest
from builder.dependencies import find_dependencies
from builder.log import BuildLog
from builder.step_sandbox import build_step_sandbox
from builder.venv import VenvBuilder
from core.domain import VersionInfo, VersionStatus
from core.ids import new_id
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DevWorkflow:
    """The folder `conveyor dev` serves and how: its slug, start command and own variables
    (None: keep the ones stored)."""

    path: Path
    slug: str
    start_command: str
    env_vars: Mapping[str, str] | None = None


async def build_and_register(runtime: Runtime, workflow: DevWorkflow) -> VersionInfo:
    """Register the folder as a new version, in a virtualenv when it declares dependencies.

    A folder without dependency files runs in the server's own environment, as before: that
    keeps `conveyor dev` instant for the common single-file workflow, and lets it use whatever
    SDK the developer installed (Render's, for instance).
    """
    path, slug = workflow.path, workflow.slug
    env: dict[str, str] | None = None
    deps = await asyncio.to_thread(find_dependencies, path)
    if not deps.empty:
        settings = runtime.settings
        build_id = new_id("bld")
        log = BuildLog(runtime.store.blobs, build_id, steps=2)
        builder = VenvBuilder(
            settings.data_dir / "venvs",
            settings.builds,
            pass_env=settings.executor.pass_env,
            sandbox=build_step_sandbox(runtime.sandbox),
        )
        try:
            built = await builder.build(BuildRequest(build_id, slug, path, ""), log)
        except BuildFailed as exc:
            tail = await log.tail(settings.builds.log_tail_chars)
            raise BuildFailed(f"{exc}\n{tail}") from None
        finally:
            await log.close()
        env = built.env
        click.echo(
            f"{'Reusing' if built.cached else 'Built'} virtualenv {built.env['VIRTUAL_ENV']}",
            err=True,
        )
    digest = await asyncio.to_thread(source_digest, path, runtime.settings.data_dir)
    return await runtime.registrar.register(
        DEFAULT_WORKSPACE_ID,
        path,
        slug=slug,
        start_command=workflow.start_command,
        env=env,
        env_vars=workflow.env_vars,
        source_digest=digest,
    )


def registered_line(slug: str, version: VersionInfo, since: datetime) -> str:
    """What a registration did: a new version, or none because nothing changed."""
    tasks = ", ".join(version.task_names) or "(none)"
    if version.created_at < since:
        return f"Unchanged: {slug} version {version.id} stays active: {tasks}"
    return f"Registered {slug} version {version.id}: {tasks}"


def source_digest(path: Path, data_dir: Path) -> str:
    """sha256 of every file the watcher would react to (names and contents), in name order."""
    accept = _SourceFilter(data_dir)
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if accept(Change.added, os.path.join(root, d)))
        for name in sorted(files):
            full = os.path.join(root, name)
            if not accept(Change.added, full) or not os.path.isfile(full):
                continue
            digest.update(os.path.relpath(full, path).encode() + b"\0")
            with open(full, "rb") as source:
                digest.update(hashlib.sha256(source.read()).digest())
    return digest.hexdigest()


class _SourceFilter(DefaultFilter):
    """watchfiles' defaults (.git, __pycache__, editors' files…) and the engine's data dir."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self._data_dir = str(data_dir.resolve())

    def __call__(self, change: Change, path: str) -> bool:
        return not path.startswith(self._data_dir) and super().__call__(change, path)


async def _reregister_on_change(runtime: Runtime, workflow: DevWorkflow) -> None:
    accept = _SourceFilter(runtime.settings.data_dir)
    async for changes in awatch(workflow.path, watch_filter=accept):
        names = sorted({Path(p).name for _, p in changes})
        click.echo(f"Changed: {', '.join(names[:5])} — registering again …", err=True)
        since = datetime.now(UTC)
        try:
            version = await build_and_register(runtime, workflow)
        except (BuildFailed, OSError) as exc:
            click.echo(f"Build failed; the previous version stays active:\n{exc}", err=True)
            continue
        if version.status is VersionStatus.READY:
            click.echo(registered_line(workflow.slug, version, since), err=True)
        else:
            click.echo(
                f"Registration failed; the previous version stays active:\n{version.message}",
                err=True,
            )


@contextlib.asynccontextmanager
async def watch_and_reregister(runtime: Runtime, workflow: DevWorkflow) -> AsyncIterator[None]:
    task = asyncio.create_task(_reregister_on_change(runtime, workflow))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
