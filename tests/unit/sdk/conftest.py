"""Fixtures of the SDK's unit tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.unit.sdk.sdk_fakes import FakePlatform


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("CONVEYOR_", "RENDER_")):
            monkeypatch.delenv(name)


@pytest.fixture
def short_dir() -> Iterator[str]:
    """A directory with a short path (a unix socket's path is limited to 108 bytes)."""
    path = tempfile.mkdtemp(prefix="cvsdk", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def platform(short_dir: str) -> AsyncIterator[FakePlatform]:
    fake = FakePlatform(socket_path=f"{short_dir}/sdk.sock")
    server = await asyncio.start_unix_server(fake.handle, path=fake.socket_path)
    try:
        yield fake
    finally:
        server.close()
        await server.wait_closed()
    assert fake.violations == []
