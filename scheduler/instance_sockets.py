"""Where instances find their platform: a socket per instance, each in a folder of its own.

The root folder is this user's (`conveyor-<uid>` in the temporary folder): 0711, so that a sandboxed
instance running as another uid can pass through it to its own folder, but no one else can list
it. Each instance's folder is 0700, owned by whoever runs the instance.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


def sockets_root() -> Path:
    """This user's folder of instance sockets: created 0711, refused if anyone else could
    list it or write into it."""
    root = Path(tempfile.gettempdir()) / f"conveyor-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o711)
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o066:
        raise RuntimeError(f"{root} must be a folder of this user's that no one else can list")
    if stat.S_IMODE(info.st_mode) != 0o711:
        os.chmod(root, 0o711)
    return root
