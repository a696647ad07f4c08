"""Suite-wide fixtures: a clean environment and the asyncio backend for anyio tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    """No CONVEYOR_* or RENDER_* variable of the developer's shell leaks into a test."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("CONVEYOR_", "RENDER_")):
            del os.environ[name]
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
