"""JSON responses that accept what tasks may return (NaN and Infinity included)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


def dumps(content: Any) -> str:
    # Render lets outputs carry NaN/Infinity, so the API must not refuse them.
    return json.dumps(content, ensure_ascii=False, allow_nan=True, separators=(",", ":"))


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "code": code}, status_code=status)
