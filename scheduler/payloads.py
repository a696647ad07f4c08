"""JSON payloads (inputs, outputs) kept inline in the database or, when large, as blobs."""

from __future__ import annotations

import json
from typing import Any

from core.blobs.base import BlobStore
from core.errors import InvalidRequest, PayloadTooLarge


def dumps(value: Any) -> str:
    # Render allows NaN/Infinity in outputs; json's default (allow_nan=True) keeps them
    return json.dumps(value, separators=(",", ":"))


def check_input(value: Any, *, max_bytes: int) -> str:
    """The input as JSON text; it must be an array or an object within the size limit."""
    if not isinstance(value, list | dict):
        raise InvalidRequest("input must be a JSON array (positional) or object (keywords)")
    try:
        text = dumps(value)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"input is not JSON: {exc}") from None
    if len(text.encode()) > max_bytes:
        raise PayloadTooLarge(f"input is {len(text.encode())} bytes; the limit is {max_bytes}")
    return text


class PayloadStore:
    def __init__(self, blobs: BlobStore, *, inline_bytes: int) -> None:
        self._blobs = blobs
        self._inline_bytes = inline_bytes

    def fits_inline(self, text: str) -> bool:
        """Whether `save` would keep `text` in the database rather than in a blob."""
        return len(text.encode()) <= self._inline_bytes

    async def save(self, key: str, text: str) -> tuple[str | None, str | None]:
        """(inline text, blob key): exactly one is set."""
        if self.fits_inline(text):
            return text, None
        await self._blobs.put(key, text.encode())
        return None, key

    async def load(self, inline: str | None, key: str | None) -> Any:
        if inline is not None:
            return json.loads(inline)
        if key is not None:
            return json.loads(await self._blobs.get(key))
        return None
