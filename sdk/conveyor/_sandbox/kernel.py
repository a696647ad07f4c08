"""The kernel calls a sandbox is made of (ctypes on the C library: the standard library has no
`unshare`, `mount`, `pivot_root` or `capset` in this Python)."""

from __future__ import annotations

import ctypes
import os
import platform
import signal

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# statvfs flags that a bind's remount must keep (a locked mount refuses to lose them)
KEPT_FLAGS = (
    (os.ST_RDONLY, MS_RDONLY),
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NOATIME, MS_NOATIME),
    (os.ST_NODIRATIME, MS_NODIRATIME),
    (os.ST_RELATIME, MS_RELATIME),
)
# the system's programs and libraries (symlinks on a merged /usr are recreated as such)

_CAPSET_HEADER_V3 = 0x20080522


class SandboxError(Exception):
    """The kernel refused a step of the sandbox; the message names the step."""


_libc: ctypes.CDLL | None = None
_libc_gil: ctypes.PyDLL | None = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _libc_holding_gil() -> ctypes.PyDLL:
    """The C library called with the GIL kept across each call (as `os.fork` keeps it)."""
    global _libc_gil
    if _libc_gil is None:
        _libc_gil = ctypes.PyDLL(None, use_errno=True)
    return _libc_gil


def check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise SandboxError(f"{what}: {os.strerror(number)} (errno {number})")


def _bytes(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    result = libc().mount(
        _bytes(source), _bytes(target), _bytes(fstype), ctypes.c_ulong(flags), _bytes(data or None)
    )
    check(result, f"mount {source or fstype or ''} on {target}")


def unshare(flags: int) -> None:
    check(libc().unshare(ctypes.c_int(flags)), "unshare")


def prctl(option: int, arg: int = 0) -> int:
    return int(libc().prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0), 0, 0))


def pivot_root(new_root: str, put_old: str) -> None:
    c = libc()
    if hasattr(c, "pivot_root"):
        result = c.pivot_root(_bytes(new_root), _bytes(put_old))
    else:
        number = {"x86_64": 155, "aarch64": 41}[platform.machine()]
        result = c.syscall(ctypes.c_long(number), _bytes(new_root), _bytes(put_old))
    check(result, "pivot_root")


# `clone` with no new stack: a fork whose child is born in new namespaces (the C library's
# wrapper needs a stack, and the standard library has no `os.clone` in this Python)
_CLONE_SYSCALL = {"x86_64": 56, "aarch64": 220}


def can_fork_into() -> bool:
    """Whether `fork_into` works here (it needs this machine's `clone` syscall number)."""
    return platform.machine() in _CLONE_SYSCALL


def fork_into(namespaces: int) -> int:
    """`os.fork`, with the child born in new `namespaces` (CLONE_NEW* flags): with a new PID
    namespace, the first process of it. The interpreter's own fork hooks run on both sides,
    as `os.fork` runs them. Only from a process with one thread (the C library's own
    bookkeeping of threads is not redone in the child).

    Returns:
        The child's pid in the parent; 0 in the child.

    Raises:
        SandboxError: The kernel refused; no child was made.
    """
    api = ctypes.pythonapi
    number = _CLONE_SYSCALL[platform.machine()]
    flags = ctypes.c_ulong(namespaces | signal.SIGCHLD)
    clone = _libc_holding_gil().syscall
    api.PyOS_BeforeFork()
    pid = int(clone(ctypes.c_long(number), flags, None, None, None, None))
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    error = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise SandboxError(f"clone: {os.strerror(error)} (errno {error})")
    return pid


def map_own_ids(uid: int, gid: int) -> None:
    """In a new user namespace: the same uid and gid inside as outside, and no other."""
    _write_proc("/proc/self/setgroups", "deny")
    _write_proc("/proc/self/uid_map", f"{uid} {uid} 1")
    _write_proc("/proc/self/gid_map", f"{gid} {gid} 1")


def _write_proc(path: str, text: str) -> None:
    # one write(2), no buffered text file: this runs once per attempt, before the task starts
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


_last_capability: int | None = None


def _drop_bounding_set() -> None:
    global _last_capability
    if _last_capability is None:  # read once, by the zygote: its children inherit the value
        try:
            with open("/proc/sys/kernel/cap_last_cap") as handle:
                _last_capability = int(handle.read())
        except OSError:
            _last_capability = 40
    for capability in range(_last_capability + 1):
        prctl(PR_CAPBSET_DROP, capability)


def become(uid: int, gid: int) -> None:
    """From root: `uid`:`gid` with no supplementary group and no capability, for good."""
    check(prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
    _drop_bounding_set()
    try:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as exc:
        raise SandboxError(f"cannot become uid {uid}: {exc.strerror}") from None
    if os.geteuid() == 0 or _effective_capabilities() != 0:
        raise SandboxError(f"could not give up root for uid {uid}")
    # a change of uid made the process undumpable, so its /proc files stay root's; its own
    # namespaces (the instance's) need them as its own
    prctl(PR_SET_DUMPABLE, 1)


def drop_capabilities() -> None:
    """No capability in any set (those a user namespace gave included), and none to regain."""
    check(prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
    _drop_bounding_set()
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    _capabilities("capset", (ctypes.c_uint32 * 6)())
    if _effective_capabilities() != 0:
        raise SandboxError("capabilities are left after dropping them")


def _effective_capabilities() -> int:
    data = _capabilities("capget", (ctypes.c_uint32 * 6)())
    return int(data[0]) | int(data[3]) << 32


# syscall numbers where the C library has no wrapper of that name
_CAPABILITY_SYSCALLS = {
    "capget": {"x86_64": 125, "aarch64": 90},
    "capset": {"x86_64": 126, "aarch64": 91},
}


def _capabilities(call: str, data: ctypes.Array[ctypes.c_uint32]) -> ctypes.Array[ctypes.c_uint32]:
    """`capget` or `capset` of this thread; `data` is two {effective, permitted, inheritable}
    triples, for capabilities 0-31 and 32-63."""
    header = (ctypes.c_uint32 * 2)(_CAPSET_HEADER_V3, 0)
    c = libc()
    if hasattr(c, call):
        result = getattr(c, call)(header, data)
    else:
        number = _CAPABILITY_SYSCALLS[call][platform.machine()]
        result = c.syscall(ctypes.c_long(number), header, data)
    check(result, call)
    return data


def join_cgroups(fds: tuple[int, ...]) -> None:
    """Moves this process into the cgroups whose `cgroup.procs` the platform opened."""
    for fd in fds:
        try:
            os.write(fd, b"0")
        except OSError as exc:
            raise SandboxError(f"joining the attempt's cgroup: {exc}") from None
        finally:
            os.close(fd)
