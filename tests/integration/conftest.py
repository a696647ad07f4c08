"""The engine's integration suite runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.databases import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder the engine test workflow's tasks and the test exchange files through."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    # tasks run sandboxed, as uids of their own: the folder is mounted into their view, and
    # any uid may write into it
    folder.chmod(0o1777)
    monkeypatch.setenv("ENGINE_SCRATCH", str(folder))
    monkeypatch.setenv("CONVEYOR_SANDBOX__MOUNTS", json.dumps([f"{folder}:{folder}:rw"]))
    return folder
