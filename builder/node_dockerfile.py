"""The Dockerfile Conveyor writes for a Node project that has none, and its build context.

A dependency layer made from package.json, the lockfile and the local packages they name
(`file:` dependencies), so a commit that keeps them reuses it; then the code and its build (the
workflow's build command, else the `build` script). `node_modules/.bin` is on PATH, as in the
embedded builder.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from builder.base import BuildFailed
from builder.dockerfile import DEPS_MARKER, shell_quote
from builder.node_project import NodeProject

CA_FILE = "conveyor-build-ca.pem"

TEMPLATE = """\
FROM {base}
{ca_step}WORKDIR /app
# The dependency layer: only package.json, the lockfile and local packages are copied first, so
# code changes reuse it.
COPY deps /opt/{marker}
RUN cp -a /opt/{marker}/. /app/ && {install}
COPY app /app
{build_step}ENV PATH=/app/node_modules/.bin:$PATH
"""

CA_STEP = """\
COPY {ca} /etc/ssl/certs/{ca}
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/{ca}
"""

_DEPENDENCY_FIELDS = ("dependencies", "devDependencies", "optionalDependencies")


def local_packages(project: NodeProject) -> list[Path]:
    """The files and folders of the project that its `file:` dependencies name."""
    found: list[Path] = []
    for field in _DEPENDENCY_FIELDS:
        declared: Any = project.package.get(field) or {}
        if not isinstance(declared, dict):
            continue
        for spec in declared.values():
            if not isinstance(spec, str) or not spec.startswith("file:"):
                continue
            path = (project.root / spec.removeprefix("file:")).resolve()
            if not path.is_relative_to(project.root.resolve()):
                raise BuildFailed(
                    f"dependency {spec!r} is outside the repository: an image build cannot see it"
                )
            if not path.exists():
                raise BuildFailed(f"dependency {spec!r}: no such file or folder in the repository")
            found.append(path)
    return found


def prepare_node_context(
    project: NodeProject,
    context: Path,
    *,
    base_image: str,
    build_command: str,
    ca_bundle: Path | None = None,
) -> Path:
    """Lay out `context` (app/, deps/, Dockerfile) and return the Dockerfile's path."""
    source = project.root
    shutil.copytree(source, context / "app", ignore=shutil.ignore_patterns(".git", "node_modules"))
    deps = context / "deps"
    deps.mkdir()
    root = source.resolve()
    for path in (source / "package.json", project.lockfile, *local_packages(project)):
        if path is None:
            continue
        target = deps / path.resolve().relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, target, ignore=shutil.ignore_patterns("node_modules"))
        else:
            shutil.copy2(path, target)
    ca_step = ""
    if ca_bundle is not None:
        shutil.copy2(ca_bundle, context / CA_FILE)
        ca_step = CA_STEP.format(ca=CA_FILE)
    if build_command.strip():
        build_step = f"RUN /bin/sh -c {shell_quote(build_command)}\n"
    elif "build" in project.scripts:
        build_step = f"RUN {project.tool} run build\n"
    else:
        build_step = ""
    dockerfile = context / "Dockerfile"
    dockerfile.write_text(
        TEMPLATE.format(
            base=base_image,
            ca_step=ca_step,
            marker=DEPS_MARKER,
            install=" ".join(project.install),
            build_step=build_step,
        )
    )
    return dockerfile
