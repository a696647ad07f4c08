"""Build steps that run a tenant's code (its dependencies' setup scripts, its build command), each
in a sandbox of its own: as a uid of its own (a root control plane's), in a cgroup with the
build's limits, seeing the system, the interpreter and the folders it builds — read-write — and
nothing else: not the data folder, not another workflow's checkout, not the server's processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path

from scheduler.sandbox.cgroups import Limits
from scheduler.sandbox.identities import Identity
from scheduler.sandbox.policy import SANDBOX_VARIABLES, SandboxPolicy, launcher_argv

_steps = itertools.count(1)


def chown_tree(folder: Path, uid: int, gid: int) -> None:
    """`folder` and everything under it (symlinks themselves, not their targets)."""
    os.lchown(folder, uid, gid)
    for parent, folders, files in os.walk(folder):
        for name in (*folders, *files):
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(parent, name), uid, gid)


class StepSandbox:
    """Wraps a build step's argv so that it runs sandboxed."""

    def __init__(self, policy: SandboxPolicy, limits: Limits) -> None:
        self._policy = policy
        self._limits = limits

    @contextlib.asynccontextmanager
    async def step(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        writable: Iterable[Path],
        readable: Iterable[Path] = (),
    ) -> AsyncIterator[tuple[list[str], dict[str, str], list[int]]]:
        """The argv, environment and files to pass of the sandboxed step; once it is over, what
        it wrote is the control plane's again (no later uid holder can change it)."""
        writable = [Path(p) for p in writable]
        identity: Identity | None = self._policy.identity()
        cgroups = self._policy.cgroups
        cgroup = (
            cgroups.create(f"build-{os.getpid()}-{next(_steps)}", self._limits) if cgroups else None
        )
        join: list[int] = []
        # what it writes goes back to whoever owned each folder (a developer's, in conveyor dev)
        owners = {folder: (folder.stat().st_uid, folder.stat().st_gid) for folder in writable}
        try:
            if identity is not None:
                for folder in writable:
                    await asyncio.to_thread(chown_tree, folder, identity.uid, identity.gid)
            step_env = {**env, **SANDBOX_VARIABLES}
            view = self._policy.view(
                cwd=cwd, env=step_env, identity=identity, writable=writable, readable=readable
            )
            join = cgroup.open_join_files() if cgroup is not None else []
            yield launcher_argv(view, cwd, join, list(argv)), step_env, join
        finally:
            for fd in join:
                os.close(fd)
            if cgroup is not None:
                await asyncio.to_thread(cgroup.remove)
            if identity is not None:
                for folder, (uid, gid) in owners.items():
                    if folder.exists():
                        await asyncio.to_thread(chown_tree, folder, uid, gid)
                identity.release()


def build_step_sandbox(policy: SandboxPolicy | None) -> StepSandbox | None:
    """The sandbox of build steps, with the build limits of `CONVEYOR_SANDBOX__BUILD_*`; None
    when the sandbox is off."""
    if policy is None:
        return None
    settings = policy.settings
    memory = settings.build_memory_mb * 1024 * 1024
    return StepSandbox(policy, Limits(settings.build_cpu, memory, settings.pids_max))
