"""Blobs as files under one folder; staging is the store itself."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from core.blobs.base import BlobNotFound, BlobStoreUnavailable
from core.data_dir import make_private_dirs, write_private_file


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    async def check(self) -> None:
        try:
            await asyncio.to_thread(make_private_dirs, self.root)
        except OSError as exc:
            raise BlobStoreUnavailable(f"blob folder {self.root} is not usable: {exc}") from exc

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"blob key escapes the store: {key!r}")
        return path

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write_atomically, self._path(key), data)

    @staticmethod
    def _write_atomically(path: Path, data: bytes) -> None:
        make_private_dirs(path.parent)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        write_private_file(temporary, data)
        os.replace(temporary, path)

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    async def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def staging_path(self, key: str) -> Path:
        path = self._path(key)
        make_private_dirs(path.parent)
        return path

    async def commit_staged(self, key: str) -> None:
        return None

    async def read_range(self, key: str, offset: int, limit: int) -> bytes:
        return await asyncio.to_thread(self._read_range, self._path(key), offset, limit)

    @staticmethod
    def _read_range(path: Path, offset: int, limit: int) -> bytes:
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                return handle.read(limit)
        except FileNotFoundError:
            raise BlobNotFound(str(path)) from None

    def presigned_url(self, key: str) -> str | None:
        # files are served through the API; there is nothing to redirect to
        return None
