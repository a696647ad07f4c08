"""The embedded builder: a virtualenv per set of dependency files, shared by every commit (a
Node project gets node_modules per lockfile instead: builder/node.py)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from builder.base import BuildFailed, BuildRequest, BuiltEnvironment
from builder.commands import run_logged
from builder.dependencies import Dependencies, environment_key, find_dependencies
from builder.log import BuildLog
from builder.node import NodeBuilder
from builder.node_project import is_node_project
from builder.sdk_install import install_sdk, sdk_fingerprint
from builder.step_sandbox import StepSandbox
from core.build_settings import BuildSettings
from core.settings import ExecutorSettings
from scheduler.executors.environment import default_path, host_variables

MARKER = "conveyor-venv.json"
# pip's and uv's own configuration (indexes, certificates, timeouts) reaches dependency installs
_PIP_PREFIXES = ("PIP_", "UV_")

# The venv is made without pip (seconds saved per environment); `pip` in it runs the server's
# pip against the venv's interpreter, so a build command's `pip install` lands in the venv.
PIP_SHIM = """#!/bin/sh
exec "{server_python}" -m pip --python "{venv}/bin/python" "$@"
"""


def venv_env(venv: Path) -> dict[str, str]:
    path = os.pathsep.join([str(venv / "bin"), default_path()])
    return {"PATH": path, "VIRTUAL_ENV": str(venv)}


def pip_local_paths(env: Mapping[str, str]) -> list[Path]:
    """Local folders and files pip's own settings name (`PIP_FIND_LINKS=/opt/wheels`, a
    `file://` index, a CA bundle): the operator's, so a sandboxed install sees them."""
    found = []
    for name, value in env.items():
        if not name.startswith(_PIP_PREFIXES):
            continue
        for word in value.split():
            path = Path(word.removeprefix("file://"))
            if path.is_absolute() and path.exists():
                found.append(path)
    return found


def build_environment(
    env_vars: Mapping[str, str], venv: Path, pass_env: Iterable[str]
) -> dict[str, str]:
    """What a build step that runs the workflow's code sees (its build command, its packages'
    setup scripts): the tasks' allow-list, pip's own settings, the workflow's variables and the
    venv. Never the control plane's environment."""
    host = host_variables(os.environ, pass_env)
    pip = {k: v for k, v in os.environ.items() if k.startswith(_PIP_PREFIXES)}
    return {**host, **pip, **env_vars, **venv_env(venv)}


class VenvBuilder:
    name = "venv"

    def __init__(
        self,
        root: Path,
        settings: BuildSettings,
        *,
        pass_env: Iterable[str] = ExecutorSettings().pass_env,
        sandbox: StepSandbox | None = None,
    ) -> None:
        self._root = root  # one folder per environment key below it
        self._settings = settings
        self._pass_env = tuple(pass_env)  # host variables build steps see (`executor.pass_env`)
        self._python = settings.python or sys.executable
        self._sandbox = sandbox  # for the steps that run the workflow's code
        # what a sandboxed step needs to see to run the venv's interpreter
        self._interpreter = Path(self._python).resolve().parent.parent
        self._node = NodeBuilder(
            root.with_name("node-modules"), settings, self._pass_env, sandbox=sandbox
        )

    async def build(self, request: BuildRequest, log: BuildLog) -> BuiltEnvironment:
        if await asyncio.to_thread(is_node_project, request.source, request.runtime):
            return await self._node.build(request, log)
        deps = await asyncio.to_thread(find_dependencies, request.source)
        # the workspace is part of the key: a build command may change its venv (`pip install`
        # lands there), so a venv is never shared with another tenant
        key = await asyncio.to_thread(
            environment_key,
            deps,
            request.source,
            self._python,
            sdk_fingerprint(),
            request.workspace_id,
        )
        venv = self._root / key
        names = ", ".join(p.name for p in deps.files) or "no dependency files"
        cached = (venv / MARKER).is_file()
        if cached:
            log.progress(f"reusing virtualenv {key} ({names} unchanged)")
        else:
            log.progress(f"creating virtualenv {key} for {names}")
            await self._create(venv, deps, request, log)
        env = venv_env(venv)
        if request.build_command.strip():
            log.progress(f"running build command: {request.build_command}")
            await run_logged(
                ["/bin/sh", "-c", request.build_command],
                log=log,
                cwd=request.source,
                env=build_environment(request.env_vars, venv, self._pass_env),
                timeout=self._settings.build_timeout_seconds,
                what="the build command",
                sandbox=self._sandbox,
                writable=[request.source, venv],
                readable=[self._interpreter, *pip_local_paths(os.environ)],
            )
        else:
            log.progress("no build command")
        return BuiltEnvironment(env=env, cached=cached)

    async def _create(
        self, venv: Path, deps: Dependencies, request: BuildRequest, log: BuildLog
    ) -> None:
        # Built beside its final place, then renamed: a concurrent build of the same key never
        # sees a half-made venv, and whichever rename loses just drops its copy.
        staging = venv.with_name(f".{venv.name}.{request.build_id}")
        self._root.mkdir(parents=True, exist_ok=True)
        try:
            await run_logged(
                [self._python, "-m", "venv", "--without-pip", str(staging)],
                log=log,
                cwd=self._root,
                env=os.environ,
                timeout=self._settings.build_timeout_seconds,
                what="creating the virtualenv",
            )
            await asyncio.to_thread(self._prepare, staging, venv)
            if deps.requirements:
                log.line(f"pip install {' '.join(deps.requirements)}")
                await run_logged(
                    [
                        str(staging / "bin" / "pip"),
                        "install",
                        "--disable-pip-version-check",
                        "--no-input",
                        *deps.requirements,
                    ],
                    log=log,
                    cwd=request.source,
                    env=build_environment(request.env_vars, staging, self._pass_env),
                    timeout=self._settings.build_timeout_seconds,
                    what="installing dependencies",
                    sandbox=self._sandbox,
                    writable=[staging],
                    readable=[self._interpreter, request.source, *pip_local_paths(os.environ)],
                )
            await asyncio.to_thread(self._finish, staging, venv, deps)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    def _prepare(self, staging: Path, final: Path) -> None:
        install_sdk(staging, final)
        shim = staging / "bin" / "pip"
        shim.write_text(PIP_SHIM.format(server_python=self._python, venv=staging))
        shim.chmod(0o755)

    def _finish(self, staging: Path, final: Path, deps: Dependencies) -> None:
        shim = staging / "bin" / "pip"
        shim.write_text(PIP_SHIM.format(server_python=self._python, venv=final))
        marker = {
            "created_at": datetime.now(UTC).isoformat(),
            "files": [p.name for p in deps.files],
            "python": self._python,
        }
        (staging / MARKER).write_text(json.dumps(marker))
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / MARKER).is_file():
                raise BuildFailed(f"cannot move the virtualenv into {final}") from None
