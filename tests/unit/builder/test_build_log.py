"""A build's log: numbered progress lines, in the blob and told to whoever shows them live."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from builder.log import BuildLog
from core.blobs.local import LocalBlobStore

pytestmark = pytest.mark.anyio


async def test_progress_lines_are_numbered_and_told_as_they_are_written(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    told: list[str] = []
    log = BuildLog(blobs, "bld-1", steps=2, on_progress=told.append)
    log.progress("installing")
    log.line("npm: added 3 packages")
    log.progress("building")
    await log.close()
    assert [re.sub(r"\d\d:\d\d:\d\d", "T", line) for line in told] == [
        "==> [1/2] T installing",
        "==> [2/2] T building",
    ]
    written = (await blobs.get("builds/bld-1.log")).decode()
    assert written == f"{told[0]}\nnpm: added 3 packages\n{told[1]}\n"


async def test_without_a_listener_the_log_alone_has_the_lines(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    log = BuildLog(blobs, "bld-2", steps=1)
    log.progress("building")
    await log.close()
    assert re.fullmatch(
        r"==> \[1/1\] \d\d:\d\d:\d\d building\n", (await blobs.get("builds/bld-2.log")).decode()
    )
