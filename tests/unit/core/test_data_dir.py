"""The data dir under a permissive umask: folders 0700, files 0600, old ones tightened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.data_dir import (
    create_private_file,
    make_private_dirs,
    prepare_data_dir,
    sqlite_path,
    tighten,
    write_private_file,
)
from core.settings import DatabaseSettings, Settings


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """What most shells and service managers start with: 0644 files, 0755 folders."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_missing_parents_are_made_private_too(tmp_path: Path) -> None:
    make_private_dirs(tmp_path / "a" / "b" / "c")
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700, 0o700, 0o700]
    make_private_dirs(tmp_path / "a" / "b")  # already there: nothing to do, no error


def test_private_files_are_0600_and_keep_their_content(tmp_path: Path) -> None:
    created = create_private_file(tmp_path / "logs" / "attempt.log")
    assert (mode(created), mode(tmp_path / "logs"), created.read_bytes()) == (0o600, 0o700, b"")
    created.write_bytes(b"kept")
    create_private_file(created)
    assert created.read_bytes() == b"kept"
    write_private_file(tmp_path / "blob", b"data")
    assert (mode(tmp_path / "blob"), (tmp_path / "blob").read_bytes()) == (0o600, b"data")


def test_tighten_takes_only_the_group_and_other_bits(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    (root / "runs").mkdir(parents=True, mode=0o755)
    (root / "runs" / "script").write_text("x")
    (root / "runs" / "script").chmod(0o755)
    (root / "runs" / "data").write_text("x")
    (root / "runs" / "data").chmod(0o644)
    (root / "runs" / "owner-only").write_text("x")
    (root / "runs" / "owner-only").chmod(0o400)
    outside = tmp_path / "outside"
    outside.write_text("x")
    outside.chmod(0o644)
    (root / "runs" / "link").symlink_to(outside)
    assert tighten(root) == 4  # blobs, runs, script, data
    assert mode(root) == mode(root / "runs") == 0o700
    assert mode(root / "runs" / "script") == 0o700
    assert mode(root / "runs" / "data") == 0o600
    assert mode(root / "runs" / "owner-only") == 0o400
    assert mode(outside) == 0o644  # a link is never followed


def test_an_existing_data_dir_is_tightened_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for folder in ("blobs/runs", "venvs/v1/bin", "instances"):
        (data / folder).mkdir(parents=True)
    data.chmod(0o755)
    files = {
        "conveyor.db": 0o644,
        "conveyor.db-wal": 0o644,
        "conveyor.db-shm": 0o666,
        "secrets.key": 0o644,
        "blobs/runs/out": 0o644,
        "instances/1.jsonl": 0o640,
        "venvs/v1/bin/python": 0o755,
    }
    for name, file_mode in files.items():
        (data / name).write_text("x")
        (data / name).chmod(file_mode)
    prepare_data_dir(Settings(data_dir=data))
    assert mode(data) == 0o700
    for name in ("conveyor.db", "conveyor.db-wal", "conveyor.db-shm", "secrets.key"):
        assert mode(data / name) == 0o600, name
    assert mode(data / "blobs") == mode(data / "blobs" / "runs") == 0o700
    assert mode(data / "blobs" / "runs" / "out") == 0o600
    assert mode(data / "instances" / "1.jsonl") == 0o600
    # a virtualenv keeps its modes: the 0700 data dir already keeps others out of it
    assert mode(data / "venvs" / "v1" / "bin" / "python") == 0o755


def test_a_data_dir_given_as_a_link_is_made_private_where_it_points(tmp_path: Path) -> None:
    target = tmp_path / "volume"
    target.mkdir(mode=0o755)
    (tmp_path / "data").symlink_to(target)
    prepare_data_dir(Settings(data_dir=tmp_path / "data"))
    assert mode(target) == 0o700
    assert mode(target / "conveyor.db") == 0o600


def test_the_trees_are_walked_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    prepare_data_dir(settings)
    assert mode(data / ".private") == 0o600
    (data / "blobs" / "runs").mkdir(parents=True)
    (data / "blobs" / "runs" / "old").write_text("x")
    for path in (data, data / "blobs", data / "blobs" / "runs", data / "blobs" / "runs" / "old"):
        path.chmod(0o755)
    (data / "secrets.key").write_text("k")
    (data / "secrets.key").chmod(0o644)
    prepare_data_dir(settings)
    # the data dir and what lies at its top are checked at every start, the trees' roots too
    assert (mode(data), mode(data / "blobs"), mode(data / "secrets.key")) == (0o700, 0o700, 0o600)
    # below them, once: this version writes nothing open, so nothing is walked again
    assert mode(data / "blobs" / "runs") == 0o755
    (data / ".private").unlink()
    prepare_data_dir(settings)
    assert mode(data / "blobs" / "runs") == 0o700
    assert mode(data / "blobs" / "runs" / "old") == 0o700  # 0755 less the group's and others'


def test_a_new_data_dir_and_its_sqlite_file_start_private(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    prepare_data_dir(Settings(data_dir=data))
    assert (mode(tmp_path / "new"), mode(data)) == (0o700, 0o700)
    assert mode(data / "conveyor.db") == 0o600
    assert (data / "conveyor.db").stat().st_size == 0  # SQLite takes an empty file as new


def test_only_a_sqlite_database_is_a_file_here(tmp_path: Path) -> None:
    assert sqlite_path("sqlite+aiosqlite:////var/lib/c/conveyor.db") == Path(
        "/var/lib/c/conveyor.db"
    )
    assert sqlite_path("sqlite+aiosqlite:///:memory:") is None
    assert sqlite_path("postgresql+asyncpg://u:p@127.0.0.1:5432/conveyor") is None
    settings = Settings(
        data_dir=tmp_path / "data",
        database=DatabaseSettings(url="postgresql+asyncpg://u:p@127.0.0.1:5432/conveyor"),
    )
    prepare_data_dir(settings)
    assert [p.name for p in (tmp_path / "data").iterdir()] == [".private"]  # no database file
