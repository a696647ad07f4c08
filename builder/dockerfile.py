"""The Dockerfile Conveyor writes for a repository that has none, and its build context."""

from __future__ import annotations

import shutil
from pathlib import Path

from builder.dependencies import find_dependencies
from builder.sdk_install import WORKER_SCRIPT, sdk_package_dir

DEPS_MARKER = "conveyor-deps"  # names the dependency step, to tell whether it was cached

TEMPLATE = """\
FROM {base}
ENV PYTHONUNBUFFERED=1 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN python3 -m venv /opt/venv
COPY sdk /opt/conveyor-sdk
RUN cp -r /opt/conveyor-sdk/conveyor \\
      "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/" \\
 && install -m 0755 /opt/conveyor-sdk/conveyor-worker /opt/venv/bin/conveyor-worker
# The dependency layer: only the dependency list is copied first, so code changes reuse it.
COPY deps /opt/{marker}
RUN if grep -qvE '^[[:space:]]*(#|$)' /opt/{marker}/requirements.txt; then \\
      pip install --no-cache-dir --disable-pip-version-check -r /opt/{marker}/requirements.txt; \\
    fi
WORKDIR /app
COPY app /app
{build_step}"""


def shell_quote(command: str) -> str:
    return "'" + command.replace("'", "'\"'\"'") + "'"


def prepare_context(source: Path, context: Path, *, base_image: str, build_command: str) -> Path:
    """Lay out `context` (app/, sdk/, deps/, Dockerfile) and return the Dockerfile's path."""
    deps = find_dependencies(source)
    shutil.copytree(source, context / "app", ignore=shutil.ignore_patterns(".git"))
    shutil.copytree(
        sdk_package_dir(),
        context / "sdk" / "conveyor",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (context / "sdk" / "conveyor-worker").write_text(
        WORKER_SCRIPT.format(python="/opt/venv/bin/python")
    )
    (context / "deps").mkdir()
    main = source / "requirements.txt"
    listed = main.read_text() if main.is_file() else "\n".join(deps.requirements) + "\n"
    (context / "deps" / "requirements.txt").write_text(listed)
    build_step = f"RUN /bin/sh -c {shell_quote(build_command)}\n" if build_command.strip() else ""
    dockerfile = context / "Dockerfile"
    dockerfile.write_text(
        TEMPLATE.format(base=base_image, marker=DEPS_MARKER, build_step=build_step)
    )
    return dockerfile
