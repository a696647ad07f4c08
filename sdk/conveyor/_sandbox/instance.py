"""An attempt's own namespaces, entered per attempt by a zygote's child."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import NoReturn

from .kernel import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_REC,
    PR_SET_PDEATHSIG,
    can_fork_into,
    drop_capabilities,
    fork_into,
    join_cgroups,
    map_own_ids,
    mount,
    prctl,
    unshare,
)
from .view import bind_mount, make_target


@dataclass(frozen=True)
class Instance:
    """What one attempt's process needs beyond its zygote's view."""

    socket_dir: str | None = None
    tmp_bytes: int = 256 * 1024 * 1024
    network: bool = True
    join_fds: tuple[int, ...] = field(default=())  # open `cgroup.procs` files to write 0 into
    keep: tuple[str, ...] = ()  # folders the zygote's view shows under /tmp (a version's code)
    # set in a child that `fork_into_instance` made: the uid and gid it had before its birth
    # in the namespaces (inside, until they are mapped, it has the overflow ids)
    born_as: tuple[int, int] | None = None


def _namespaces(network: bool) -> int:
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    return flags | (0 if network else CLONE_NEWNET)


def fork_into_instance(network: bool) -> tuple[int, tuple[int, int]] | None:
    """In a zygote: a child born in an attempt's own namespaces, the first process of its PID
    namespace. One fork where `enter_instance` alone needs two (a Python process's fork costs
    about a millisecond, and so does the end of each process).

    Returns:
        None where this machine cannot (the zygote forks and the child enters them itself);
        else the child's pid in the zygote, 0 in the child, and the ids `Instance.born_as`
        must carry.

    Raises:
        SandboxError: The kernel refused; no child was made.
    """
    if not can_fork_into():
        return None
    ids = (os.getuid(), os.getgid())
    return fork_into(_namespaces(network)), ids


def enter_instance(instance: Instance) -> None:
    """In a zygote's child: the attempt's own namespaces. Returns in the attempt's process,
    the first of its PID namespace. A child that `fork_into_instance` made was born in them;
    any other forks once more, and the process that called this stays behind, waits for that
    one and exits as it exits.

    Raises:
        SandboxError: The kernel refused a step (in the calling process: nothing has run yet).
    """
    join_cgroups(instance.join_fds)
    if instance.born_as is not None:
        map_own_ids(*instance.born_as)
    else:
        uid, gid = os.getuid(), os.getgid()
        unshare(_namespaces(instance.network))
        map_own_ids(uid, gid)
        pid = os.fork()
        if pid:
            wait_and_end_as(pid)
        # the process the platform knows waits for this one: if it is gone, so is this one
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    # what the zygote's /tmp and /dev/shm show besides scratch (a folder of code; this socket,
    # in either) is shown again on top of the attempt's own, empty ones
    kept = [*instance.keep, *([instance.socket_dir] if instance.socket_dir else [])]
    fds = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path in kept}
    try:
        mount(
            "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={instance.tmp_bytes},mode=1777"
        )
        mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
        for path in instance.keep:
            make_target(path, f"/proc/self/fd/{fds[path]}")
            mount(f"/proc/self/fd/{fds[path]}", path, None, MS_BIND | MS_REC)
        if instance.socket_dir is not None:
            source = f"/proc/self/fd/{fds[instance.socket_dir]}"
            bind_mount(source, instance.socket_dir, writable=True, recursive=False)
    finally:
        for fd in fds.values():
            os.close(fd)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    drop_capabilities()
    # the first process of a PID namespace ignores signals it has no handler for: TERM must
    # still end it, as it ends any other process
    signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum: int, _frame: object) -> None:
    os._exit(128 + signum)


def wait_and_end_as(pid: int) -> NoReturn:
    """Waits for `pid` (the attempt's process) and ends the same way: its code, or its signal.

    Signals sent to the whole process group reach the attempt's process directly; this one
    ignores those the attempt may outlive.
    """
    for ignored in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(ignored, signal.SIG_IGN)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        if signum not in (signal.SIGKILL, signal.SIGSTOP):  # no handler can be set for these
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
