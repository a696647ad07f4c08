"""The embedded builder's Node side: node_modules per lockfile and Node version, shared by commits.

Dependencies are installed once per cache key (builder/node_project.py) into a folder beside the
virtualenvs, and each checkout links its `node_modules` there, so a commit that keeps its lockfile
installs nothing. Then the build script (or the workflow's build command) runs in the checkout
with `node_modules/.bin` on PATH, as npm would run it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from builder.base import BuildFailed, BuildRequest, BuiltEnvironment
from builder.commands import run_logged
from builder.log import BuildLog
from builder.node_project import NodeProject, read_node_project
from builder.step_sandbox import StepSandbox
from core.build_settings import BuildSettings
from scheduler.executors.environment import default_path, host_variables

MARKER = "conveyor-node-modules.json"
# in a developer's own folder: the key its node_modules was installed for
IN_PLACE_STAMP = ".conveyor-install-key"
# the package managers' own configuration (registry, cache, certificates) reaches installs
_TOOL_PREFIXES = ("NPM_CONFIG_", "npm_config_", "YARN_", "PNPM_", "COREPACK_")


@cache
def node_version() -> str:
    """`node --version` of the host (part of every cache key: native modules depend on it)."""
    try:
        done = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        raise BuildFailed(
            "this is a Node project but `node` is not on this builder's PATH "
            "(Debian: apt-get install nodejs npm)"
        ) from None
    return done.stdout.strip()


def node_env(source: Path) -> dict[str, str]:
    """What a Node version's instances get: its `node_modules/.bin` first on PATH."""
    return {"PATH": os.pathsep.join([str(source / "node_modules" / ".bin"), default_path()])}


def node_build_environment(
    env_vars: Mapping[str, str], source: Path, pass_env: Iterable[str]
) -> dict[str, str]:
    """What install and build steps see: the tasks' allow-list, the package managers' own
    settings, the workflow's variables and node_modules/.bin. Never the control plane's."""
    host = host_variables(os.environ, pass_env)
    tools = {k: v for k, v in os.environ.items() if k.startswith(_TOOL_PREFIXES)}
    return {**host, **tools, **env_vars, **node_env(source)}


class NodeBuilder:
    """Installs and builds a Node project where it is; used by the embedded builder.

    `in_place` (a developer's folder, `conveyor dev`): node_modules stays the folder's own,
    installed there only when missing or when the lockfile changed since Conveyor installed it.
    Otherwise (a checkout) it is shared by every checkout with the same cache key.
    """

    def __init__(
        self,
        root: Path,
        settings: BuildSettings,
        pass_env: Iterable[str],
        *,
        in_place: bool = False,
        sandbox: StepSandbox | None = None,
    ) -> None:
        self._root = root  # one folder per cache key below it
        self._settings = settings
        self._pass_env = tuple(pass_env)
        self._in_place = in_place
        self._sandbox = sandbox  # installs and builds run the workflow's code

    async def build(self, request: BuildRequest, log: BuildLog) -> BuiltEnvironment:
        project = await asyncio.to_thread(read_node_project, request.source)
        version = await asyncio.to_thread(node_version)
        key = await asyncio.to_thread(project.cache_key, version, request.workspace_id)
        lock = project.lockfile.name if project.lockfile else "no lockfile"
        if self._in_place:
            cached = await self._install_in_place(project, key, request, log)
        else:
            modules = self._root / key
            cached = (modules / MARKER).is_file()
            if cached:
                log.progress(f"reusing node_modules {key} ({lock} unchanged, node {version})")
            else:
                log.progress(f"installing node_modules {key} with {' '.join(project.install)}")
                await self._install(project, modules, request, log)
            await asyncio.to_thread(
                _link, request.source / "node_modules", modules / "node_modules"
            )
        env = node_build_environment(request.env_vars, request.source, self._pass_env)
        await self._build_step(project, request, env, log)
        start = None
        if request.start_command_is_default:
            start = project.start_command()
            log.line(f'start command: {start} (the "start" script of package.json)')
        return BuiltEnvironment(env=node_env(request.source), cached=cached, start_command=start)

    async def _build_step(
        self, project: NodeProject, request: BuildRequest, env: dict[str, str], log: BuildLog
    ) -> None:
        if request.build_command.strip():
            log.progress(f"running build command: {request.build_command}")
            argv = ["/bin/sh", "-c", request.build_command]
        elif "build" in project.scripts:
            log.progress(f"running the build script: {project.scripts['build']}")
            argv = [project.tool, "run", "build"]
        else:
            log.progress("no build command and no build script")
            return
        await run_logged(
            argv,
            log=log,
            cwd=request.source,
            env=env,
            timeout=self._settings.build_timeout_seconds,
            what="the build",
            sandbox=self._sandbox,
            writable=[request.source],
            readable=_linked_modules(request.source),
        )

    async def _install_in_place(
        self, project: NodeProject, key: str, request: BuildRequest, log: BuildLog
    ) -> bool:
        """Install into the folder's node_modules unless it is there for this key already; a
        node_modules Conveyor did not install is the developer's, and is used as it is."""
        modules = request.source / "node_modules"
        stamp = modules / IN_PLACE_STAMP
        if modules.is_dir() and (not stamp.is_file() or stamp.read_text().strip() == key):
            log.progress("using the folder's node_modules")
            if not stamp.is_file():
                stamp.write_text(key)
            return True
        log.progress(f"installing node_modules with {' '.join(project.install)}")
        await run_logged(
            project.install,
            log=log,
            cwd=request.source,
            env=node_build_environment(request.env_vars, request.source, self._pass_env),
            timeout=self._settings.build_timeout_seconds,
            what="installing dependencies",
            sandbox=self._sandbox,
            writable=[request.source],
        )
        modules.mkdir(exist_ok=True)
        # `npm install` without a lockfile writes one: the key is the folder's as it is now
        installed = await asyncio.to_thread(read_node_project, request.source)
        stamp.write_text(await asyncio.to_thread(installed.cache_key, node_version()))
        return False

    async def _install(
        self, project: NodeProject, modules: Path, request: BuildRequest, log: BuildLog
    ) -> None:
        # Installed in the checkout (so `file:` dependencies resolve), then moved to its cache
        # folder under a name of its own and renamed into place: a concurrent build of the same
        # key never sees a half-made folder, and whichever rename loses drops its copy.
        installed = request.source / "node_modules"
        staging = modules.with_name(f".{modules.name}.{request.build_id}")
        await asyncio.to_thread(_remove, installed)
        try:
            await run_logged(
                project.install,
                log=log,
                cwd=request.source,
                env=node_build_environment(request.env_vars, request.source, self._pass_env),
                timeout=self._settings.build_timeout_seconds,
                what="installing dependencies",
                sandbox=self._sandbox,
                writable=[request.source],
            )
            await asyncio.to_thread(self._keep, project, installed, staging, modules)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    def _keep(self, project: NodeProject, installed: Path, staging: Path, final: Path) -> None:
        staging.mkdir(parents=True)
        if installed.is_dir():
            shutil.move(installed, staging / "node_modules")
        else:  # a package with no dependencies
            (staging / "node_modules").mkdir()
        marker = {
            "created_at": datetime.now(UTC).isoformat(),
            "lockfile": project.lockfile.name if project.lockfile else None,
            "install": list(project.install),
        }
        (staging / MARKER).write_text(json.dumps(marker))
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / MARKER).is_file():
                raise BuildFailed(f"cannot move node_modules into {final}") from None


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _linked_modules(source: Path) -> list[Path]:
    """The shared node_modules a checkout links to, for a sandboxed step to see."""
    modules = source / "node_modules"
    return [modules.resolve()] if modules.is_symlink() else []


def _link(link: Path, target: Path) -> None:
    _remove(link)
    link.symlink_to(target, target_is_directory=True)
