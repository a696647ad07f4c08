"""Where instances find their platform: a socket per instance, each in a folder of its own.

The root folder is this user's (`conveyor-<uid>`): 0711, so that a sandboxed instance running as
another uid can pass through it to its own folder, but no one else can list it. Each instance's
folder is 0700, owned by whoever runs the instance.

It is in /dev/shm where that is a tmpfs, else in the temporary folder: every run makes a folder
and a socket there and removes them when it ends, and on a disk's filesystem that is metadata
written for nothing (on an ext4 without a journal, each new inode is also found by scanning past
those freed in the last minutes: at hundreds of runs a second, a tenth of the control plane's
CPU).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import stat
import sys
import tempfile
from pathlib import Path

SHARED_MEMORY = "/dev/shm"
_TMPFS_MAGIC = 0x01021994


def sockets_parent(shared_memory: str = SHARED_MEMORY) -> Path:
    """/dev/shm if it is a tmpfs folder this user may write in; else the temporary folder."""
    try:
        in_memory = _filesystem_type(shared_memory) == _TMPFS_MAGIC
    except OSError:
        in_memory = False
    if in_memory and os.access(shared_memory, os.W_OK | os.X_OK):
        return Path(shared_memory)
    return Path(tempfile.gettempdir())


def _filesystem_type(path: str) -> int:
    """`statfs`'s f_type of the filesystem holding `path`."""
    buffer = ctypes.create_string_buffer(256)  # larger than struct statfs on any platform
    if ctypes.CDLL(None, use_errno=True).statfs(os.fsencode(path), buffer) != 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number), path)
    return int.from_bytes(buffer.raw[: ctypes.sizeof(ctypes.c_long)], sys.byteorder, signed=True)


@functools.cache
def _chosen_parent() -> Path:
    """`sockets_parent()`, chosen once per process: every attempt's start asks, and the answer
    must not change under the instances already running (a restart finds them there)."""
    return sockets_parent()


def sockets_root() -> Path:
    """This user's folder of instance sockets: created 0711, refused if anyone else could
    list it or write into it."""
    root = _chosen_parent() / f"conveyor-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o711)
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o066:
        raise RuntimeError(f"{root} must be a folder of this user's that no one else can list")
    if stat.S_IMODE(info.st_mode) != 0o711:
        os.chmod(root, 0o711)
    return root
