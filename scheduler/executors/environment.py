"""What a task's process sees in its environment: an allow-list, never the control plane's own.

A task is untrusted code. Its environment is made of, in this order (later wins):

1. on the host (local executor only): a few variables any program expects — HOME, the locale,
   TZ, TMPDIR, USER — and the names the operator lists in `executor.pass_env` (CA bundles by
   default; proxy variables only when listed, as their URLs may hold credentials);
2. a PATH: this interpreter's bin folder (so `conveyor-worker` resolves) and the system's;
3. the version's environment — a built virtualenv's PATH and VIRTUAL_ENV — and the workflow's own
   variables, then the run's ids (`CONVEYOR_TASK_RUN_ID`, `CONVEYOR_ATTEMPT`);
4. the instance variables the SDKs read: RENDER_SDK_MODE, RENDER_SDK_SOCKET_PATH.

Nothing else: no `CONVEYOR_*` setting of the server (database URL, session secret, secrets key),
no cloud credentials of the control plane. Container executors start from the image's own
environment, so they take only 3 and 4.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from scheduler.executors.base import AttemptSpec, VersionSpec

# what any program may expect of its host; none of them carries a secret
HOST_VARIABLES = (
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
)
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SET_BY_THE_PLATFORM = ("RENDER_SDK_", "CONVEYOR_")
SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")


def default_path() -> str:
    """This interpreter's bin folder (the SDKs' start commands live there), then the system's."""
    return os.pathsep.join([str(Path(sys.executable).parent), *SYSTEM_PATH])


def instance_variables(spec: AttemptSpec) -> dict[str, str]:
    """What the SDKs read to find the platform, and unbuffered output for a live log."""
    return {
        "PYTHONUNBUFFERED": "1",
        "RENDER_SDK_MODE": spec.mode.value,
        "RENDER_SDK_SOCKET_PATH": str(spec.socket_path),
    }


def host_variables(host: Mapping[str, str], pass_env: Iterable[str]) -> dict[str, str]:
    """The allowed names of the host's environment that are set there."""
    names = (*HOST_VARIABLES, *pass_env)
    return {name: host[name] for name in names if name in host and not is_private(name)}


def variable_name_problem(name: str) -> str | None:
    """Why a workflow may not set the variable `name`, or None when it may."""
    if not _VARIABLE_NAME.match(name):
        return f"{name!r} is not a variable name (letters, digits and _, not first a digit)"
    if name.upper().startswith(_SET_BY_THE_PLATFORM):
        prefixes = " or ".join(_SET_BY_THE_PLATFORM)
        return f"{name!r} is reserved: Conveyor sets the names starting {prefixes}"
    return None


def is_private(name: str) -> bool:
    """A variable of the control plane's own that no task may ever see."""
    return name.upper().startswith("CONVEYOR_")


def local_version_environment(
    version: VersionSpec, *, pass_env: Iterable[str], host: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What every local process of a version shares (a zygote runs with exactly this)."""
    env = host_variables(os.environ if host is None else host, pass_env)
    env["PATH"] = default_path()
    env.update(version.env)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def local_attempt_environment(version_env: Mapping[str, str], spec: AttemptSpec) -> dict[str, str]:
    """The whole environment of a local attempt's process (spawned or forked from a zygote),
    from its version's (`local_version_environment`)."""
    return {**version_env, **spec.env, **instance_variables(spec)}


def container_environment(spec: AttemptSpec) -> dict[str, str]:
    """The variables a container gets on top of its image's own."""
    return {**spec.env, **instance_variables(spec)}
