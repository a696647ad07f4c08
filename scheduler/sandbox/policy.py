"""What a sandboxed instance sees and may use, from the settings: its view of the host, its uid
(as root), its cgroup's limits; and the argv of a spawned instance's launcher."""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from conveyor import _sandbox
from conveyor._sandbox import Bind, View
from core.errors import ServiceError
from core.sandbox_settings import SandboxSettings, parse_mount
from core.settings import Plan
from scheduler.sandbox.cgroups import Cgroups, Limits
from scheduler.sandbox.identities import Identity, IdentityPool

logger = logging.getLogger(__name__)

SANDBOX_PACKAGE = str(Path(_sandbox.__file__).resolve().parent)
SYSTEM_PATH_DIRS = frozenset({"/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"})
# what a sandboxed process finds in its environment for its home and scratch space
SANDBOX_VARIABLES = {"HOME": "/tmp", "TMPDIR": "/tmp"}
_PROBE_SECONDS = 30.0


class SandboxUnavailable(ServiceError):
    """The kernel refuses the sandbox here (e.g. inside an unprivileged container)."""


class SandboxPolicy:
    """The sandbox of one control-plane process's instances."""

    def __init__(
        self,
        settings: SandboxSettings,
        *,
        hidden: Iterable[Path],
        state_dir: Path,
    ) -> None:
        """
        Args:
            settings: `CONVEYOR_SANDBOX__*`.
            hidden: Folders no instance may see even under a folder it is shown (data dirs).
            state_dir: A 0700 folder of the control plane's for the uid locks.
        """
        self.settings = settings
        self.hidden = tuple(str(p.resolve()) for p in hidden)
        self.as_root = os.geteuid() == 0
        self.identities = (
            IdentityPool(state_dir / "uids", settings.uid_base, settings.uid_count)
            if self.as_root
            else None
        )
        self.cgroups = Cgroups.detect()
        if self.cgroups is None:
            logger.warning(
                "sandbox: no cgroup can be made here; plans limit only memory (an rlimit), "
                "not CPU or processes"
            )
        elif self.cgroups.attach_waits():
            logger.warning(
                "sandbox: an attempt may wait for an RCU grace period (up to 10-20 ms) to join its "
                "cgroup on this host; set /sys/kernel/rcu_expedited to 1, or mount cgroup2 with "
                "favordynmods (docs/deployment.md, 'Host settings')"
            )
        self._mounts = tuple(parse_mount(m) for m in settings.mounts)

    def identity(self) -> Identity | None:
        """A uid of its own for an instance (as root), else None (a user namespace is used)."""
        return self.identities.acquire() if self.identities is not None else None

    def limits(self, plan: Plan) -> Limits:
        return Limits(plan.cpu, plan.memory_mb * 1024 * 1024, self.settings.pids_max)

    def view(
        self,
        *,
        cwd: Path,
        env: Mapping[str, str],
        identity: Identity | None,
        shared: Iterable[Path] = (),
        writable: Iterable[Path] = (),
        readable: Iterable[Path] = (),
    ) -> View:
        """The view of a version's instances: its folder and dependencies read-only (those
        of `writable` read-write), the operator's mounts, `shared` folders at their paths."""
        written = [str(path) for path in writable]
        binds = [Bind(str(cwd)), *_linked_from(cwd)]
        binds.extend(Bind(path, "", True) for path in written)
        # what must only be readable, unless it is in a folder shown writable (a venv being
        # built is both the step's VIRTUAL_ENV and what it writes to)
        read_only = [str(path) for path in readable]
        if virtual_env := env.get("VIRTUAL_ENV"):
            read_only.append(virtual_env)
        for entry in env.get("PATH", "").split(os.pathsep):
            if entry and os.path.isabs(entry) and entry not in SYSTEM_PATH_DIRS:
                read_only.append(entry)
        for entry in env.get("PYTHONPATH", "").split(os.pathsep):
            if entry and os.path.isabs(entry):
                read_only.append(entry)
        binds.extend(Bind(path) for path in read_only if not any(_under(path, w) for w in written))
        binds.extend(Bind(source, destination, rw) for source, destination, rw in self._mounts)
        return View(
            binds=tuple(binds),
            hidden=self.hidden,
            shared=tuple(str(p) for p in shared),
            tmp_bytes=self.settings.tmp_mb * 1024 * 1024,
            uid=identity.uid if identity else None,
            gid=identity.gid if identity else None,
            network=self.settings.network,
        )

    def instance_request(self, socket_dir: Path | None, join_fds: int) -> dict[str, object]:
        """What a zygote's child needs to enter an attempt's own namespaces (its fds follow)."""
        return {
            "socket_dir": str(socket_dir) if socket_dir is not None else None,
            "tmp_bytes": self.settings.tmp_mb * 1024 * 1024,
            "network": self.settings.network,
            "join_fds": join_fds,
        }


def _linked_from(folder: Path) -> list[Bind]:
    """What the folder's own top-level symlinks point to outside it (a Node project's shared
    node_modules), read-only."""
    found = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        if entry.is_symlink():
            target = Path(entry.path).resolve()
            if target.exists() and not target.is_relative_to(folder.resolve()):
                found.append(Bind(str(target)))
    return found


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def launcher_argv(view: View, cwd: Path, join_fds: Iterable[int], command: list[str]) -> list[str]:
    """Runs `command` in `view`, in a PID namespace of its own (its first process an init)."""
    fds = ",".join(str(fd) for fd in join_fds) or "-"
    return [
        sys.executable,
        "-I",
        "-c",
        _sandbox.LAUNCH,
        SANDBOX_PACKAGE,
        view.to_json(),
        str(cwd),
        fds,
        "--",
        *command,
    ]


@functools.cache
def sandbox_problem() -> str | None:
    """Why the kernel refuses the sandbox here, or None when it allows it (tried once)."""
    view = View(python_paths=True, uid=65534 if os.geteuid() == 0 else None, gid=65534)
    argv = launcher_argv(view, Path("/"), (), ["/bin/sh", "-c", "exit 0"])
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=_PROBE_SECONDS,
            env={"PATH": "/usr/bin:/bin"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    return (
        done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
    )
