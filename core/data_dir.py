"""The data dir is its owner's alone: folders 0700, files 0600, whatever the process's umask.

It holds the SQLite database, the blobs (inputs, results, logs), `secrets.key`, the session secret
and registry credentials. A process that opens it makes it 0700 first, then tightens what an
earlier version (or a permissive umask) left open to the group or to others. Virtualenvs and
checkouts keep their modes: runs may read them under another identity, and the data dir's own 0700
already keeps everyone else out of them.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

from core.settings import Settings

logger = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_OPEN_TO_OTHERS = 0o077
# what under the data dir is the control plane's alone, tightened file by file at start
PRIVATE_TREES = ("blobs", "spool", "instances", "docker-config", "sandbox")
# left once those trees were walked: what this version writes is private already, and a walk of
# a busy server's blobs would cost every CLI command that opens the data dir seconds
TIGHTENED_MARK = ".private"
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def make_private_dirs(path: Path) -> None:
    """`path` and any missing parent created 0700 (`os.makedirs` gives parents the umask's mode)."""
    try:
        path.mkdir(mode=PRIVATE_DIR)
    except FileExistsError:
        return
    except FileNotFoundError:
        make_private_dirs(path.parent)
        path.mkdir(mode=PRIVATE_DIR, exist_ok=True)


def create_private_file(path: Path) -> Path:
    """`path` created empty and 0600 when missing, so whatever appends to it later keeps that mode.

    An existing file is left as it is (its content too).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, PRIVATE_FILE)
    except FileNotFoundError:
        make_private_dirs(path.parent)
        fd = os.open(path, flags, PRIVATE_FILE)
    os.close(fd)
    return path


def write_private_file(path: Path, data: bytes) -> None:
    """`data` into `path`, created (or truncated) with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as sink:
        sink.write(data)


def restrict(path: Path) -> bool:
    """Take the group's and others' bits off `path` (never following a link); True if changed.

    A path of another user's is left alone with a warning: only its owner (or root) may change it.
    """
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode) or not info.st_mode & _OPEN_TO_OTHERS:
        return False
    try:
        path.chmod(stat.S_IMODE(info.st_mode) & ~_OPEN_TO_OTHERS)
    except PermissionError:
        logger.warning("%s is open to other users and not ours to restrict", path)
        return False
    return True


def tighten(root: Path) -> int:
    """`root` and everything under it closed to the group and others; how many changed."""
    changed = int(restrict(root))
    for folder, folders, files in os.walk(root):
        here = Path(folder)
        changed += sum(restrict(here / name) for name in folders)
        changed += sum(restrict(here / name) for name in files)
    return changed


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite database URL; None for another database or an in-memory one."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def prepare_data_dir(settings: Settings) -> None:
    """The data dir 0700, what is already in it tightened, and the SQLite database made 0600
    before SQLite creates it (its -wal and -shm files take the database file's mode)."""
    make_private_dirs(settings.data_dir)
    data_dir = settings.data_dir.resolve()  # a data dir that is a link: its target is made private
    changed = int(restrict(data_dir))
    walked = (data_dir / TIGHTENED_MARK).exists()
    for entry in data_dir.iterdir():
        if entry.name in PRIVATE_TREES:
            changed += restrict(entry) if walked else tighten(entry)
        elif entry.is_file() and not entry.is_symlink():
            changed += restrict(entry)
    if not walked:
        create_private_file(data_dir / TIGHTENED_MARK)
    database = sqlite_path(settings.database_url)
    if database is not None:
        create_private_file(database)
        for suffix in ("", *_SQLITE_COMPANIONS):
            changed += restrict(database.with_name(database.name + suffix))
    if changed:
        logger.warning(
            "%s: %d files or folders were open to other users and are now private to this one",
            data_dir,
            changed,
        )
