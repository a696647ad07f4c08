"""Reading a JSON body without trusting its declared or actual size."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from core.errors import InvalidRequest, PayloadTooLarge

# Room for the envelope around `input` ({"task": ..., "idempotencyKey": ...}).
ENVELOPE_BYTES = 64 * 1024


async def read_json_body(request: Request, max_bytes: int) -> Any:
    """The parsed body; PayloadTooLarge past `max_bytes`, InvalidRequest when not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidRequest("Content-Length is not a number") from None
        if size > max_bytes:
            raise _too_large(max_bytes)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
