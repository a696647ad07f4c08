"""The view: what a sandboxed process sees of the host, entered once (a zygote, a launcher)."""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass
from typing import Any

from .kernel import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    KEPT_FLAGS,
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    SandboxError,
    become,
    check,
    drop_capabilities,
    libc,
    map_own_ids,
    mount,
    pivot_root,
    unshare,
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
    "pip.conf",
)
SDK_PACKAGES = ("conveyor", "render", "render_sdk")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
_STAGE = "/tmp"  # where a new root is put together before it becomes `/`
_CAPSET_HEADER_V3 = 0x20080522


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


def _kept_flags(path: str) -> int:
    try:
        held = os.statvfs(path).f_flag
    except OSError:
        return 0
    return sum(ms for st, ms in KEPT_FLAGS if held & st)


def make_target(path: str, like: str) -> None:
    if os.path.isdir(like):
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            with open(path, "w"):
                pass


def bind_mount(source: str, target: str, *, writable: bool, recursive: bool = True) -> None:
    """Shows `source` at `target`; read-only and without set-uid or devices unless writable."""
    make_target(target, source)
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
        # shown twice (a folder to build, also the environment's VIRTUAL_ENV): writable wins
        writable = bind.writable or (target in wanted and wanted[target].writable)
        wanted[target] = Bind(source, target, writable)
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
            bind_mount(path, root + path, writable=False)
    os.makedirs(root + "/etc")
    for name in ETC_ENTRIES:
        # copied, not bound: every mount is copied again into each attempt's namespace
        path = "/etc/" + name
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.copytree(path, root + path, symlinks=True, ignore=_unshareable)
        elif os.path.lexists(path):
            shutil.copy2(path, root + path, follow_symlinks=False)
    os.makedirs(root + "/tmp")
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={view.tmp_bytes},mode=1777")
    _make_dev(root + "/dev")
    masks: list[str] = []
    for bind in binds:
        source = f"/proc/self/fd/{sources[bind.source]}"
        bind_mount(source, root + bind.destination, writable=bind.writable)
        for path in view.hidden:
            if _under(path, bind.source):
                masks.extend(_mask(root + bind.destination + path[len(bind.source) :]))
    for path in view.shared:
        source = f"/proc/self/fd/{sources[path]}"
        bind_mount(source, root + path, writable=True, recursive=False)
    for path in masks:
        mount(None, path, None, MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)


def _unshareable(folder: str, names: list[str]) -> set[str]:
    """What of a folder of /etc is not copied: private keys (/etc/ssl/private), and anything
    this process may not read."""
    skipped = {name for name in names if name == "private"}
    for name in names:
        path = os.path.join(folder, name)
        if not os.path.islink(path) and not os.access(path, os.R_OK):
            skipped.add(name)
    return skipped


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
    pivot_root(".", ".")
    check(libc().umount2(b".", ctypes.c_int(MNT_DETACH)), "umount the old root")
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
    check(libc().sethostname(view.hostname.encode(), len(view.hostname)), "sethostname")
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
