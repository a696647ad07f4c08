"""A run's sandbox, entered in its own process before any of the run's code.

Standard library only, and loaded by path (as `conveyor._zygote` is): it runs in any version's
interpreter, whose environment need not have `conveyor` installed. Linux only.

Two levels, both made of namespaces:

- the **view** (`enter_view`), entered once by a zygote before it imports a version's code, or
  by the launcher of a spawned instance: a mount namespace whose root holds the system's programs
  and libraries, a few files of `/etc`, the version's code and dependencies — all read-only — a
  minimal `/dev`, a private `/tmp`, and nothing else of the host: no data folder, no other
  workflow's checkout, no home folder. Started as root, it then becomes an unprivileged uid
  (`uid`/`gid`); started as anyone else, it is entered through a user namespace. Either way
  `no_new_privs` is set and no capability is left.
- the **instance** (`enter_instance`), entered per attempt by a zygote's child: its own user,
  mount, PID, IPC and UTS namespaces (so no other process is visible or signallable), a fresh
  `/tmp`, `/dev/shm` and `/proc`, and its own socket folder only. The child forks once more to
  be the first process of its PID namespace; the process the platform knows waits for it and
  ends as it ends.

A spec is JSON (`View.from_json`): never a secret, since it may be seen in a process's argv.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import platform
import signal
import sys
from dataclasses import dataclass, field
from typing import Any, NoReturn

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
_KEPT_FLAGS = (
    (os.ST_RDONLY, MS_RDONLY),
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NOATIME, MS_NOATIME),
    (os.ST_NODIRATIME, MS_NODIRATIME),
    (os.ST_RELATIME, MS_RELATIME),
)
# the system's programs and libraries (symlinks on a merged /usr are recreated as such)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# what programs read in /etc: users' names, name resolution, certificates, time zone, linker
ETC_ENTRIES = (
    "passwd",
    "group",
    "nsswitch.conf",
    "hosts",
    "host.conf",
    "resolv.conf",
    "gai.conf",
    "services",
    "protocols",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "crypto-policies",
    "localtime",
    "timezone",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "mime.types",
    "os-release",
    "debian_version",
    "login.defs",
)
SDK_PACKAGES = ("conveyor", "render", "render_sdk")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
_STAGE = "/tmp"  # where a new root is put together before it becomes `/`
_CAPSET_HEADER_V3 = 0x20080522


class SandboxError(Exception):
    """The kernel refused a step of the sandbox; the message names the step."""


@dataclass(frozen=True)
class Bind:
    """A host path shown at `target` (the same path when empty), read-only unless `writable`."""

    source: str
    target: str = ""
    writable: bool = False

    @property
    def destination(self) -> str:
        return self.target or self.source


@dataclass(frozen=True)
class View:
    """What a sandboxed process sees of the host."""

    binds: tuple[Bind, ...] = ()
    hidden: tuple[str, ...] = ()  # never shown, even under a bound folder (a data folder)
    shared: tuple[str, ...] = ()  # shown at their path inside the private /tmp (socket folders)
    tmp_bytes: int = 256 * 1024 * 1024
    uid: int | None = None  # started as root: the identity to become
    gid: int | None = None
    network: bool = True
    python_paths: bool = True  # also show this interpreter's prefix and `sys.path`
    hostname: str = "conveyor"

    @classmethod
    def from_json(cls, text: str) -> View:
        raw: dict[str, Any] = json.loads(text)
        binds = tuple(Bind(*item) for item in raw.pop("binds", ()))
        hidden = tuple(raw.pop("hidden", ()))
        shared = tuple(raw.pop("shared", ()))
        return cls(binds=binds, hidden=hidden, shared=shared, **raw)

    def to_json(self) -> str:
        raw = {
            "binds": [[b.source, b.target, b.writable] for b in self.binds],
            "hidden": list(self.hidden),
            "shared": list(self.shared),
            "tmp_bytes": self.tmp_bytes,
            "uid": self.uid,
            "gid": self.gid,
            "network": self.network,
            "python_paths": self.python_paths,
            "hostname": self.hostname,
        }
        return json.dumps(raw)


@dataclass(frozen=True)
class Instance:
    """What one attempt's process needs beyond its zygote's view."""

    socket_dir: str | None = None
    tmp_bytes: int = 256 * 1024 * 1024
    network: bool = True
    join_fds: tuple[int, ...] = field(default=())  # open `cgroup.procs` files to write 0 into
    keep: tuple[str, ...] = ()  # folders the zygote's view shows under /tmp (a version's code)


_libc: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise SandboxError(f"{what}: {os.strerror(number)} (errno {number})")


def _bytes(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    result = _c().mount(
        _bytes(source), _bytes(target), _bytes(fstype), ctypes.c_ulong(flags), _bytes(data or None)
    )
    _check(result, f"mount {source or fstype or ''} on {target}")


def unshare(flags: int) -> None:
    _check(_c().unshare(ctypes.c_int(flags)), "unshare")


def _prctl(option: int, arg: int = 0) -> int:
    return int(
        _c().prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0), 0, 0)
    )


def _pivot_root(new_root: str, put_old: str) -> None:
    libc = _c()
    if hasattr(libc, "pivot_root"):
        result = libc.pivot_root(_bytes(new_root), _bytes(put_old))
    else:
        number = {"x86_64": 155, "aarch64": 41}[platform.machine()]
        result = libc.syscall(ctypes.c_long(number), _bytes(new_root), _bytes(put_old))
    _check(result, "pivot_root")


def map_own_ids(uid: int, gid: int) -> None:
    """In a new user namespace: the same uid and gid inside as outside, and no other."""
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"{gid} {gid} 1")


def _kept_flags(path: str) -> int:
    try:
        held = os.statvfs(path).f_flag
    except OSError:
        return 0
    return sum(ms for st, ms in _KEPT_FLAGS if held & st)


def _make_target(path: str, like: str) -> None:
    if os.path.isdir(like):
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            with open(path, "w"):
                pass


def _bind(source: str, target: str, *, writable: bool, recursive: bool = True) -> None:
    """Shows `source` at `target`; read-only and without set-uid or devices unless writable."""
    _make_target(target, source)
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    flags = _kept_flags(source) | MS_NOSUID | MS_NODEV | (0 if writable else MS_RDONLY)
    mount(None, target, None, MS_REMOUNT | MS_BIND | flags)


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _python_paths() -> list[str]:
    """This interpreter's installation and everything its imports may read (an editable
    install's folders too, which only its import hook knows)."""
    paths = {os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix):
        paths.add(os.path.realpath(prefix))
    for entry in sys.path:
        if entry:
            paths.add(os.path.realpath(entry))
    for name in SDK_PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for location in (spec and spec.submodule_search_locations) or ():
            paths.add(os.path.realpath(location))
    return [p for p in paths if p != "/" and os.path.exists(p)]


def plan_binds(view: View) -> list[Bind]:
    """The view's binds, resolved, widest first, without those a wider one already shows."""
    wanted: dict[str, Bind] = {}
    for bind in view.binds:
        source = os.path.realpath(bind.source)
        if source == "/" or not os.path.exists(source):
            continue
        target = bind.target or source
        wanted[target] = Bind(source, target, bind.writable)
    if view.python_paths:
        for path in _python_paths():
            wanted.setdefault(path, Bind(path, path))
    chosen: list[Bind] = []
    for target in sorted(wanted, key=len):
        bind = wanted[target]
        if any(_under(target, s) for s in SYSTEM_DIRS) or _under(target, "/proc"):
            continue
        identity = bind.source == target
        covered = identity and any(
            c.source == c.destination and _under(target, c.source) and c.writable == bind.writable
            for c in chosen
        )
        if not covered:
            chosen.append(bind)
    return chosen


def _populate_root(root: str, view: View, binds: list[Bind], sources: dict[str, int]) -> None:
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            os.symlink(os.readlink(path), root + path)
        elif os.path.isdir(path):
            _bind(path, root + path, writable=False)
    os.makedirs(root + "/etc")
    for name in ETC_ENTRIES:
        path = "/etc/" + name
        if os.path.exists(path):
            _bind(path, root + path, writable=False)
    os.makedirs(root + "/tmp")
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={view.tmp_bytes},mode=1777")
    _make_dev(root + "/dev")
    masks: list[str] = []
    for bind in binds:
        source = f"/proc/self/fd/{sources[bind.source]}"
        _bind(source, root + bind.destination, writable=bind.writable)
        for path in view.hidden:
            if _under(path, bind.source):
                masks.extend(_mask(root + bind.destination + path[len(bind.source) :]))
    for path in view.shared:
        source = f"/proc/self/fd/{sources[path]}"
        _bind(source, root + path, writable=True, recursive=False)
    for path in masks:
        mount(None, path, None, MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)


def _mask(path: str) -> list[str]:
    """Covers `path`, which a bind made visible: an empty folder that can be passed through
    but not listed (a later bind may show something under it), or /dev/null for a file.

    Returns:
        The folder mounted (to be made read-only once every bind is in place).
    """
    if not os.path.lexists(path):
        return []
    if os.path.isdir(path):
        mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0711")
        return [path]
    mount("/dev/null", path, None, MS_BIND)
    return []


def _make_dev(dev: str) -> None:
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755")
    for name in DEVICES:
        if os.path.exists("/dev/" + name):
            with open(f"{dev}/{name}", "w"):
                pass
            mount("/dev/" + name, f"{dev}/{name}", None, MS_BIND)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{dev}/{name}")
    os.makedirs(dev + "/shm")
    mount("tmpfs", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    mount(None, dev, None, MS_REMOUNT | MS_NOSUID | MS_NOEXEC | MS_RDONLY)


def _switch_root(root: str) -> None:
    """`root` becomes `/`; the old root is gone from this namespace; `/` is read-only."""
    os.chdir(root)
    _pivot_root(".", ".")
    _check(_c().umount2(b".", ctypes.c_int(MNT_DETACH)), "umount the old root")
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def enter_view(
    view: View, cwd: str | None = None, *, new_user_namespace: bool, fresh_proc: bool
) -> list[Bind]:
    """Enters the view: from here on this process sees only what `view` shows.

    Args:
        view: What to show, and the identity to become when started as root.
        cwd: The folder to be in afterwards (the version's; it must be shown).
        new_user_namespace: Enter a user namespace of its own (a caller that is not root and
            is not in one already).
        fresh_proc: Mount a `/proc` of this process's PID namespace (it must own that
            namespace); otherwise the host's is shown, as a later namespace needs one to
            mount its own.

    Returns:
        The folders and files shown besides the system's.

    Raises:
        SandboxError: The kernel refused a step.
    """
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (0 if view.network else CLONE_NEWNET)
    unshare(flags | CLONE_NEWUSER if new_user_namespace else flags)
    if new_user_namespace:
        map_own_ids(uid, gid)
    _check(_c().sethostname(view.hostname.encode(), len(view.hostname)), "sethostname")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    binds = plan_binds(view)
    sources: dict[str, int] = {}
    try:
        for source in [b.source for b in binds] + list(view.shared):
            sources[source] = os.open(source, os.O_PATH | os.O_CLOEXEC)
        mount("tmpfs", _STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
        _populate_root(_STAGE, view, binds, sources)
    finally:
        for fd in sources.values():
            os.close(fd)
    os.makedirs(_STAGE + "/proc")
    if fresh_proc:
        mount("proc", _STAGE + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    else:
        mount("/proc", _STAGE + "/proc", None, MS_BIND | MS_REC)
    _switch_root(_STAGE)
    if os.geteuid() == 0 and not new_user_namespace:
        if view.uid is None:
            raise SandboxError("a sandbox entered as root needs a uid to become")
        become(view.uid, view.gid if view.gid is not None else view.uid)
    else:
        drop_capabilities()
    os.chdir(cwd or "/")
    return binds


def _drop_bounding_set() -> None:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            last = int(handle.read())
    except OSError:
        last = 40
    for capability in range(last + 1):
        _prctl(PR_CAPBSET_DROP, capability)


def become(uid: int, gid: int) -> None:
    """From root: `uid`:`gid` with no supplementary group and no capability, for good."""
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
    _drop_bounding_set()
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.geteuid() == 0 or _effective_capabilities() != 0:
        raise SandboxError(f"could not give up root for uid {uid}")
    # a change of uid made the process undumpable, so its /proc files stay root's; its own
    # namespaces (the instance's) need them as its own
    _prctl(PR_SET_DUMPABLE, 1)


def drop_capabilities() -> None:
    """No capability in any set (those a user namespace gave included), and none to regain."""
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
    _drop_bounding_set()
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    header = (ctypes.c_uint32 * 2)(_CAPSET_HEADER_V3, 0)
    data = (ctypes.c_uint32 * 6)()
    libc = _c()
    if hasattr(libc, "capset"):
        result = libc.capset(header, data)
    else:
        number = {"x86_64": 126, "aarch64": 91}[platform.machine()]
        result = libc.syscall(ctypes.c_long(number), header, data)
    _check(result, "capset")
    if _effective_capabilities() != 0:
        raise SandboxError("capabilities are left after dropping them")


def _effective_capabilities() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return -1


def enter_instance(instance: Instance) -> None:
    """In a zygote's child: the attempt's own namespaces. Returns in the attempt's process
    (the first of its PID namespace); the process that called it stays behind, waits for that
    one and exits as it exits.

    Raises:
        SandboxError: The kernel refused a step (in the calling process: nothing has run yet).
    """
    join_cgroups(instance.join_fds)
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    unshare(flags | (0 if instance.network else CLONE_NEWNET))
    map_own_ids(uid, gid)
    pid = os.fork()
    if pid:
        wait_and_end_as(pid)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    # what the zygote's /tmp shows besides scratch (a folder of code there; this socket) is
    # shown again on top of the attempt's own, empty /tmp
    kept = [*instance.keep, *([instance.socket_dir] if instance.socket_dir else [])]
    fds = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path in kept}
    try:
        mount(
            "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={instance.tmp_bytes},mode=1777"
        )
        for path in instance.keep:
            _make_target(path, f"/proc/self/fd/{fds[path]}")
            mount(f"/proc/self/fd/{fds[path]}", path, None, MS_BIND | MS_REC)
        if instance.socket_dir is not None:
            source = f"/proc/self/fd/{fds[instance.socket_dir]}"
            _bind(source, instance.socket_dir, writable=True, recursive=False)
    finally:
        for fd in fds.values():
            os.close(fd)
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    drop_capabilities()
    # the first process of a PID namespace ignores signals it has no handler for: TERM must
    # still end it, as it ends any other process
    signal.signal(signal.SIGTERM, _terminated)


def join_cgroups(fds: tuple[int, ...]) -> None:
    """Moves this process into the cgroups whose `cgroup.procs` the platform opened."""
    for fd in fds:
        try:
            os.write(fd, b"0")
        except OSError as exc:
            raise SandboxError(f"joining the attempt's cgroup: {exc}") from None
        finally:
            os.close(fd)


def _terminated(signum: int, _frame: object) -> None:
    os._exit(128 + signum)


def wait_and_end_as(pid: int) -> NoReturn:
    """Waits for `pid` (the attempt's process) and ends the same way: its code, or its signal.

    Signals sent to the whole process group reach the attempt's process directly; this one
    ignores those the attempt may outlive.
    """
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_IGN)
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
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def launch(view: View, cwd: str, argv: list[str]) -> NoReturn:
    """A spawned instance: enter the view with a PID namespace of its own, run `argv` in it.

    The first process of the namespace stays as its init (it passes signals on and reaps);
    the command runs as its child.
    """
    uid, gid = os.getuid(), os.getgid()
    as_root = os.geteuid() == 0
    unshare(CLONE_NEWPID if as_root else CLONE_NEWPID | CLONE_NEWUSER)
    if not as_root:
        map_own_ids(uid, gid)
    init = os.fork()
    if init:
        wait_and_end_as(init)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    enter_view(view, cwd, new_user_namespace=False, fresh_proc=True)
    _run_as_init(argv)


def _run_as_init(argv: list[str]) -> NoReturn:
    child = os.fork()
    if child == 0:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, signal.SIG_DFL)
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            sys.stderr.write(f"cannot run {argv[0]}: {exc}\n")
            os._exit(127)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in (
        signal.SIGTERM,
        signal.SIGINT,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    ):
        signal.signal(signum, forward)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
        if pid == child:
            break
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


LAUNCH = (
    "import sys, types\n"
    "path = sys.argv[1]\n"
    "module = types.ModuleType('conveyor_sandbox')\n"
    "module.__file__ = path\n"
    "sys.modules[module.__name__] = module\n"
    "exec(compile(open(path, 'rb').read(), path, 'exec'), module.__dict__)\n"
    "module.main(sys.argv[2:])\n"
)


def main(argv: list[str]) -> None:
    """The launcher's entry: ``VIEW_JSON CWD FDS -- COMMAND...``; FDS: ``-`` or ``3,4`` (open
    `cgroup.procs` files to join before anything else)."""
    view_json, cwd, fds, separator, *command = argv
    if separator != "--" or not command:
        sys.stderr.write("usage: VIEW_JSON CWD FDS -- COMMAND...\n")
        sys.exit(2)
    try:
        join_cgroups(() if fds == "-" else tuple(int(fd) for fd in fds.split(",")))
        launch(View.from_json(view_json), cwd, command)
    except SandboxError as exc:
        sys.stderr.write(f"sandbox: {exc}\n")
        sys.exit(126)
