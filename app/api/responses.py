"""JSON responses that accept what tasks may return (NaN and Infinity included)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


def dumps(content: Any) -> str:
    """JSON text that always encodes as UTF-8.

    Render lets outputs carry NaN/Infinity, so they are written as Python does. A lone surrogate
    cannot enter through the API, but a task's output may hold one: it is then written as its
    `\\uXXXX` escape (what the task sent), never an error on every later read.
    """
    text = json.dumps(content, ensure_ascii=False, allow_nan=True, separators=(",", ":"))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=True, separators=(",", ":"))
    return text


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "code": code}, status_code=status)
