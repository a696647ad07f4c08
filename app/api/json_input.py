"""Untrusted JSON and text: refused with 400 unless it can be stored and read back identically.

- Nesting deeper than `MAX_DEPTH` is refused from the raw text, before `json.loads` recurses.
- A lone UTF-16 surrogate (`"\\ud800"`, or its bytes in CESU form) cannot be encoded as UTF-8,
  so neither SQLite, PostgreSQL nor a JSON answer can hold it: refused.
- Text stored in its own column (task refs, idempotency keys, workflow fields) refuses NUL,
  which PostgreSQL cannot store, and more characters than the column holds.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from core.errors import InvalidRequest

MAX_DEPTH = 512

_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_BRACKET_STEP = [0] * 256
for _open in b"[{":
    _BRACKET_STEP[_open] = 1
for _close in b"]}":
    _BRACKET_STEP[_close] = -1
# Valid pairs decode to one code point; only an escape of a surrogate can leave one alone.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in the JSON text `raw` (brackets in strings ignored)."""
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    opened = brackets.count(b"[") + brackets.count(b"{")
    if opened <= 1:
        return opened
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)))


def parse_json(raw: bytes, what: str = "request body") -> Any:
    """The value of `raw`, or InvalidRequest naming why it cannot be stored as sent."""
    if nesting_depth(raw) > MAX_DEPTH:
        raise InvalidRequest(f"{what} nests arrays or objects deeper than {MAX_DEPTH} levels")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"{what} is not valid JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(raw):
        path = lone_surrogate_path(value)
        if path is not None:
            raise InvalidRequest(
                f"{what} holds a lone UTF-16 surrogate (like \\ud800) at {path or 'the top'}: "
                "it is not valid Unicode and cannot be stored"
            )
    return value


def lone_surrogate_path(value: Any) -> str | None:
    """Where the first string (or key) holding a lone surrogate is, e.g. `input[0].name`."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                return path
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
        elif isinstance(item, dict):
            for key, child in item.items():
                where = f"{path}.{key!a}" if path else f"{key!a}"
                if _LONE_SURROGATE.search(key):
                    return where
                stack.append((child, where))
    return None


def check_text(value: str, field: str, max_chars: int | None = None) -> str:
    """`value` if it fits a text column: no NUL, not longer than `max_chars`."""
    if "\x00" in value:
        raise InvalidRequest(f"{field} must not contain NUL characters")
    if max_chars is not None and len(value) > max_chars:
        raise InvalidRequest(f"{field} is longer than {max_chars} characters")
    return value
