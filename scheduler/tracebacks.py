"""The last Python traceback in a captured log: the official SDKs print it instead of sending it."""

from __future__ import annotations

from pathlib import Path

_MARKER = "Traceback (most recent call last):"
_TAIL_BYTES = 64 * 1024
_MAX_CHARS = 20_000


def last_traceback(log_path: Path) -> str | None:
    try:
        with log_path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(size - _TAIL_BYTES, 0))
            tail = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return None
    start = tail.rfind(_MARKER)
    if start < 0:
        return None
    lines = tail[start:].splitlines()
    end = len(lines)
    # the traceback ends at its exception line: the first line after it not indented
    for index in range(1, len(lines)):
        if not lines[index].startswith((" ", "\t")) and not lines[index].startswith(
            ("During handling", "The above exception", _MARKER)
        ):
            end = index + 1
            break
    return "\n".join(lines[:end])[:_MAX_CHARS]
