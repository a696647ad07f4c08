"""A build's log: written live into a blob's staging file, with numbered progress lines."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import BinaryIO

from core.blobs.base import BlobStore


def build_log_key(build_id: str) -> str:
    return f"builds/{build_id}.log"


class BuildLog:
    """Append-only; readers see each line as soon as it is written (the API streams it)."""

    def __init__(
        self,
        blobs: BlobStore,
        build_id: str,
        *,
        steps: int,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.key = build_log_key(build_id)
        self._on_progress = on_progress  # told each progress line too (a terminal, say)
        self._blobs = blobs
        self._steps = steps
        self._step = 0
        path = blobs.staging_path(self.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = path.open("ab")

    def progress(self, message: str) -> None:
        """`==> [2/5] message` — the next step of the build."""
        self._step += 1
        clock = datetime.now(UTC).strftime("%H:%M:%S")
        text = f"==> [{self._step}/{self._steps}] {clock} {message}"
        self.line(text)
        if self._on_progress is not None:
            self._on_progress(text)

    def line(self, text: str) -> None:
        self.write(text.rstrip("\n").encode() + b"\n")

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()

    async def close(self) -> None:
        self._file.close()
        await self._blobs.commit_staged(self.key)

    async def tail(self, chars: int) -> str:
        data = await asyncio.to_thread(self._blobs.staging_path(self.key).read_bytes)
        return data.decode(errors="replace")[-chars:]
