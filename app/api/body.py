"""Reading a JSON body without trusting its declared or actual size, depth or text."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from app.api.json_input import parse_json
from core.errors import InvalidRequest, PayloadTooLarge

# Room for the envelope around `input` ({"task": ..., "idempotencyKey": ...}).
ENVELOPE_BYTES = 64 * 1024


async def read_json_body(request: Request, max_bytes: int) -> Any:
    """The parsed body; PayloadTooLarge past `max_bytes`, InvalidRequest if unfit (json_input)."""
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
    return parse_json(raw)


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
