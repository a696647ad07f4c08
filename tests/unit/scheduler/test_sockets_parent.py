"""Instance sockets live on a tmpfs where there is one: they are made and removed per run."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from scheduler.instance_sockets import sockets_parent


def _mounted_as_tmpfs(path: str) -> bool:
    """From the mount table, not from the code under test."""
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1:3] == [path, "tmpfs"] for line in mounts)


@pytest.mark.skipif(not _mounted_as_tmpfs("/dev/shm"), reason="/dev/shm is no tmpfs here")
def test_a_tmpfs_is_chosen() -> None:
    assert sockets_parent("/dev/shm") == Path("/dev/shm")


@pytest.mark.parametrize("candidate", ["/proc", "/sys", "/no/such/folder"])
def test_anything_else_falls_back_to_the_temporary_folder(candidate: str) -> None:
    assert sockets_parent(candidate) == Path(tempfile.gettempdir())
