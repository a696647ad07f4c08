"""Unprivileged uids for sandboxed instances, when the control plane runs as root.

Each zygote, spawned instance and build step holds a uid of its own from a configured range
while it lives. A uid is held by a lock on a file (so the control-plane processes of one host
never hand out the same one) and is skipped while any process still runs as it (an instance
that outlived the control plane that started it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path

from core.data_dir import make_private_dirs


class NoIdentityLeft(Exception):
    """Every uid of the range is held or in use."""


@dataclass
class Identity:
    """A uid (and a gid of the same number) held until `release`."""

    uid: int
    gid: int
    _lock: int | None = field(default=None, repr=False)

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def uids_in_use() -> set[int]:
    """The uids that processes of this host run as (from the owners of `/proc/<pid>`)."""
    used: set[int] = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                used.add(entry.stat(follow_symlinks=False).st_uid)
    return used


class IdentityPool:
    """Hands out the uids `base` .. `base + count - 1`, one holder at a time."""

    def __init__(self, lock_dir: Path, base: int, count: int) -> None:
        self._lock_dir = lock_dir
        self._base = base
        self._count = count
        self._next = 0

    def acquire(self) -> Identity:
        """A uid no one holds and no process runs as.

        Raises:
            NoIdentityLeft: The whole range is taken.
        """
        make_private_dirs(self._lock_dir)  # its parents too: mkdir gives them the umask's mode
        used = uids_in_use()
        for step in range(self._count):
            offset = (self._next + step) % self._count
            uid = self._base + offset
            if uid in used:
                continue
            lock = os.open(self._lock_dir / f"{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(lock)
                continue
            self._next = offset + 1
            return Identity(uid, uid, lock)
        raise NoIdentityLeft(
            f"all {self._count} sandbox uids from {self._base} are in use "
            "(CONVEYOR_SANDBOX__UID_BASE / __UID_COUNT)"
        )
