"""A real engine under a permissive umask keeps its data dir private: folders 0700, files 0600.

The SQLite database and its -wal and -shm files, blobs (inputs, results, logs and their
timestamps), secrets.key, the session secret and the instance journal are checked after runs that
read and write all of them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.dashboard.session import load_or_create_secret
from core.domain import RunStatus
from core.secrets import SecretBox
from tests.integration.engine_fixtures import open_engine, run_to_end

pytestmark = pytest.mark.anyio

# the zygote pool's own output and the built virtualenvs are not the control plane's records
NOT_CHECKED = ("zygotes", "venvs")


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def open_to_others(data: Path) -> list[str]:
    """Every path under `data` (itself included) that the group or others may use."""
    found = []
    for path in [data, *data.rglob("*")]:
        relative = path.relative_to(data)
        if relative.parts and relative.parts[0] in NOT_CHECKED:
            continue
        if stat.S_IMODE(path.lstat().st_mode) & 0o077:
            found.append(f"{relative} {stat.filemode(path.lstat().st_mode)}")
    return found


@pytest.mark.usefixtures("permissive_umask")
async def test_nothing_the_engine_writes_is_open_to_other_users(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with open_engine(tmp_path) as runtime:
        fan = await run_to_end(runtime, "wf/fan", [3])  # four runs, each with its log
        assert fan.status is RunStatus.SUCCEEDED, fan.error
        SecretBox.from_settings(runtime.settings).seal({"TOKEN": "value"})
        load_or_create_secret(data)
        # while the database is open: SQLite removes -wal and -shm when the last connection ends
        names = {p.name for p in data.rglob("*")}
        assert {"conveyor.db", "conveyor.db-wal", "conveyor.db-shm", "secrets.key"} <= names
        assert any(p.is_file() for p in (data / "blobs").rglob("*")), "no blob was written"
        assert open_to_others(data) == []
    assert open_to_others(data) == []
