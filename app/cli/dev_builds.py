"""`conveyor dev`: build PATH with the embedded builder, register it, and again on each change."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import click
from watchfiles import Change, DefaultFilter, awatch

from builder.base import BuildFailed, BuildRequest, BuiltEnvironment
from builder.catalog import DEFAULT_START_COMMAND
from builder.dependencies import find_dependencies
from builder.log import BuildLog
from builder.node import NodeBuilder
from builder.node_project import build_outputs, is_node_project
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
    path = workflow.path
    env: dict[str, str] | None = None
    start_command = workflow.start_command
    if await asyncio.to_thread(is_node_project, path, "python"):
        built = await _build_node(runtime, workflow)
        env, start_command = built.env, built.start_command or start_command
    elif not (await asyncio.to_thread(find_dependencies, path)).empty:
        settings = runtime.settings
        builder = VenvBuilder(
            settings.data_dir / "venvs",
            settings.builds,
            pass_env=settings.executor.pass_env,
            sandbox=build_step_sandbox(runtime.sandbox),
        )
        built = await _logged_build(
            runtime, builder.build, BuildRequest("", workflow.slug, path, "")
        )
        env = built.env
        click.echo(
            f"{'Reusing' if built.cached else 'Built'} virtualenv {built.env['VIRTUAL_ENV']}",
            err=True,
        )
    digest = await asyncio.to_thread(source_digest, path, runtime.settings.data_dir)
    return await runtime.registrar.register(
        DEFAULT_WORKSPACE_ID,
        path,
        slug=workflow.slug,
        start_command=start_command,
        env=env,
        env_vars=workflow.env_vars,
        source_digest=digest,
    )


async def _build_node(runtime: Runtime, workflow: DevWorkflow) -> BuiltEnvironment:
    """Install the folder's dependencies when needed, then its build script (e.g. `tsc`)."""
    settings = runtime.settings
    builder = NodeBuilder(
        settings.data_dir / "node-modules",
        settings.builds,
        settings.executor.pass_env,
        in_place=True,
        sandbox=build_step_sandbox(runtime.sandbox),
    )
    request = BuildRequest(
        "",
        workflow.slug,
        workflow.path,
        "",
        runtime="node",
        start_command_is_default=workflow.start_command == DEFAULT_START_COMMAND,
    )
    built = await _logged_build(runtime, builder.build, request)
    click.echo(
        f"{'Using' if built.cached else 'Installed'} {workflow.path / 'node_modules'}; built",
        err=True,
    )
    return built


async def _logged_build(
    runtime: Runtime,
    build: Callable[[BuildRequest, BuildLog], Awaitable[BuiltEnvironment]],
    request: BuildRequest,
) -> BuiltEnvironment:
    """Run a build with a log of its own, its steps shown as they start; its tail is in the
    error when it fails."""
    build_id = new_id("bld")
    log = BuildLog(runtime.store.blobs, build_id, steps=3, on_progress=_show_step)
    try:
        return await build(replace(request, build_id=build_id), log)
    except BuildFailed as exc:
        tail = await log.tail(runtime.settings.builds.log_tail_chars)
        raise BuildFailed(f"{exc}\n{tail}") from None
    finally:
        await log.close()


def _show_step(line: str) -> None:
    click.echo(f"  {line}", err=True)


def registered_line(slug: str, version: VersionInfo, since: datetime) -> str:
    """What a registration did: a new version, or none because nothing changed."""
    tasks = ", ".join(version.task_names) or "(none)"
    if version.created_at < since:
        return f"Unchanged: {slug} version {version.id} stays active: {tasks}"
    return f"Registered {slug} version {version.id}: {tasks}"


def source_digest(path: Path, data_dir: Path) -> str:
    """sha256 of every file the watcher would react to (names and contents), in name order."""
    accept = _source_filter(path, data_dir)
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
    """watchfiles' defaults (.git, __pycache__, node_modules, editors' files…), the engine's data
    dir and what a build writes (tsconfig.json's outDir): an edit of a `.ts` file is one change,
    not a second one when its `.js` is written."""

    def __init__(self, data_dir: Path, outputs: tuple[Path, ...] = ()) -> None:
        super().__init__()
        self._ignored = tuple(str(p.resolve()) for p in (data_dir, *outputs))

    def __call__(self, change: Change, path: str) -> bool:
        ignored = any(path == p or path.startswith(p + os.sep) for p in self._ignored)
        ignored = ignored or path.endswith(".tsbuildinfo")  # tsc's incremental state
        return not ignored and super().__call__(change, path)


def _source_filter(path: Path, data_dir: Path) -> _SourceFilter:
    outputs = build_outputs(path) if is_node_project(path, "python") else ()
    return _SourceFilter(data_dir, outputs)


async def _reregister_on_change(runtime: Runtime, workflow: DevWorkflow) -> None:
    accept = _source_filter(workflow.path, runtime.settings.data_dir)
    data_dir = runtime.settings.data_dir
    registered = await asyncio.to_thread(source_digest, workflow.path, data_dir)
    async for changes in awatch(workflow.path, watch_filter=accept):
        # a change of owner or mode (a sandboxed build hands the folder back) is no edit
        digest = await asyncio.to_thread(source_digest, workflow.path, data_dir)
        if digest == registered:
            continue
        registered = digest
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
