"""A Node project in a checkout: whether it is one, how to install it, build it and start it.

A repository is a Node project when its workflow says `runtime: "node"`, or when it has a
`package.json` and none of Python's project files (nor a `.py` file at its root: a Python
workflow that keeps a package.json for tooling stays a Python one). Its dependencies install
with the tool whose lockfile is there (`npm ci`; `pnpm`/`yarn` when their lockfile is there and
the tool is on the host), its `build` script runs unless the workflow has a build command, and
its `start` script is the start command unless the workflow has one of its own.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.base import BuildFailed

PYTHON_PROJECT_FILES = (
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "Pipfile",
    "poetry.lock",
    "uv.lock",
)
# (lockfile, tool, install argv): the first lockfile found decides
LOCKFILES = (
    ("package-lock.json", "npm", ("npm", "ci", "--no-audit", "--no-fund", "--install-links")),
    ("npm-shrinkwrap.json", "npm", ("npm", "ci", "--no-audit", "--no-fund", "--install-links")),
    ("pnpm-lock.yaml", "pnpm", ("pnpm", "install", "--frozen-lockfile")),
    ("yarn.lock", "yarn", ("yarn", "install", "--frozen-lockfile")),
)
NO_LOCKFILE_INSTALL = ("npm", "install", "--no-audit", "--no-fund", "--install-links")
# the parts of package.json that decide what gets installed (not its scripts or version)
_DEPENDENCY_FIELDS = (
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
    "overrides",
    "resolutions",
    "workspaces",
)
_SHELL_SYNTAX = re.compile(r"[;&|<>$`(){}*?\\\"'~#]|\n")
# tsconfig.json allows comments and trailing commas, so its outDir is found rather than parsed
_OUT_DIR = re.compile(r'"outDir"\s*:\s*"([^"]+)"')


def is_node_project(source: Path, runtime: str) -> bool:
    """`runtime: "node"`, or a package.json with no Python project file beside it."""
    if runtime == "node":
        return True
    if not (source / "package.json").is_file():
        return False
    python = any((source / name).is_file() for name in PYTHON_PROJECT_FILES)
    return not python and not any(source.glob("requirements*.txt")) and not any(source.glob("*.py"))


@dataclass(frozen=True)
class NodeProject:
    root: Path
    package: dict[str, Any]
    lockfile: Path | None
    tool: str  # npm | pnpm | yarn
    install: tuple[str, ...]

    @property
    def scripts(self) -> dict[str, str]:
        scripts = self.package.get("scripts") or {}
        return {k: v for k, v in scripts.items() if isinstance(k, str) and isinstance(v, str)}

    def cache_key(self, node_version: str, owner: str = "") -> str:
        """Same lockfile, same declared dependencies, same tool and Node ⇒ same node_modules;
        never shared with another `owner` (a workspace: install scripts may change what they
        install)."""
        digest = hashlib.sha256(owner.encode() + b"\0")
        declared = {k: self.package[k] for k in _DEPENDENCY_FIELDS if k in self.package}
        for part in (node_version, " ".join(self.install), json.dumps(declared, sort_keys=True)):
            digest.update(part.encode() + b"\0")
        if self.lockfile is not None:
            digest.update(self.lockfile.name.encode() + b"\0")
            digest.update(hashlib.sha256(self.lockfile.read_bytes()).digest())
        return digest.hexdigest()[:24]

    def start_command(self) -> str:
        """The `start` script as a start command; BuildFailed when there is none."""
        script = self.scripts.get("start", "").strip()
        if not script:
            raise BuildFailed(
                'package.json has no "start" script: add one (e.g. "node dist/main.js") '
                "or give the workflow a start command"
            )
        if _SHELL_SYNTAX.search(script):
            return shlex.join(["/bin/sh", "-c", script])
        return script


def build_outputs(source: Path) -> tuple[Path, ...]:
    """What a build writes in the folder (tsconfig.json's `outDir`), so that a watcher can tell
    a developer's edit from the build's own output."""
    try:
        text = (source / "tsconfig.json").read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return ()
    return tuple((source / found).resolve() for found in _OUT_DIR.findall(text))


def read_node_project(source: Path) -> NodeProject:
    path = source / "package.json"
    try:
        package = json.loads(path.read_text())
    except FileNotFoundError:
        raise BuildFailed('runtime "node" needs a package.json at the root folder') from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BuildFailed(f"package.json is not valid JSON: {exc}") from None
    if not isinstance(package, dict):
        raise BuildFailed("package.json must be a JSON object")
    for name, tool, argv in LOCKFILES:
        lockfile = source / name
        if lockfile.is_file():
            if tool != "npm" and shutil.which(tool) is None:
                raise BuildFailed(
                    f"{name} needs {tool}, which this builder does not have: install it "
                    f"(e.g. `corepack enable {tool}`) or commit a package-lock.json instead"
                )
            return NodeProject(source, package, lockfile, tool, argv)
    return NodeProject(source, package, None, "npm", NO_LOCKFILE_INSTALL)
