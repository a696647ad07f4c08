"""Values as people read them: durations, times, and JSON cut down to a readable size."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from app.api.json_input import lone_surrogate_path
from conveyor._jsonschema import describe
from core.domain import TaskParameter

MAX_STRING = 400  # characters of one string value shown before it is cut
MAX_ITEMS = 50  # items of one array or object shown before the rest are summarised
MAX_DEPTH = 8
MAX_TEXT = 20_000  # characters of the whole pretty-printed document


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return _aware(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: datetime | None) -> str:
    return "" if value is None else _aware(value).astimezone(UTC).isoformat()


def epoch_ms(value: datetime | None) -> int | None:
    """Milliseconds since the epoch (what the page's script computes with); None stays None."""
    return None if value is None else int(_aware(value).timestamp() * 1000)


def clock(ms: int | None, full: bool = False) -> str:
    """A log line's time: `14:03:07.250` (UTC), or with its date when `full`; `—` if unknown."""
    if ms is None:
        return "—" if not full else "time unknown"
    at = datetime.fromtimestamp(ms / 1000, UTC)
    if full:
        return at.strftime("%Y-%m-%d %H:%M:%S.") + f"{at.microsecond // 1000:03d} UTC"
    return at.strftime("%H:%M:%S.") + f"{at.microsecond // 1000:03d}"


def duration(start: datetime | None, end: datetime | None, now: datetime | None = None) -> str:
    """`1.25 s`, `3 min 4 s`, `2 h 5 min`; an open interval runs to `now`; no start is `—`."""
    if start is None:
        return "—"
    finish = _aware(end) if end is not None else (now or datetime.now(UTC))
    seconds = max((finish - _aware(start)).total_seconds(), 0.0)
    return seconds_text(seconds)


def seconds_text(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


SHORT_ID_CHARS = 8


def short_id(value: str) -> str:
    """An id cut the same way everywhere: its last characters, which are random (the first
    ones after the prefix are the creation time, shared by ids made in the same moment)."""
    return f"…{value[-SHORT_ID_CHARS:]}" if len(value) > SHORT_ID_CHARS else value


def usd(value: float | None) -> str:
    """Dollars with the precision small amounts need: `$0.000123`, `$1.25`."""
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if value < 0.01:
        return f"${value:.6f}"
    return f"${value:,.2f}"


def shorten(value: Any, depth: int = 0) -> tuple[Any, bool]:
    """`value` with long strings, long containers and deep nesting cut; True if anything was."""
    if isinstance(value, str) and len(value) > MAX_STRING:
        return f"{value[:MAX_STRING]}… (+{len(value) - MAX_STRING} characters)", True
    if isinstance(value, list | dict) and depth >= MAX_DEPTH:
        return f"… (nested {type(value).__name__} not shown)", True
    if isinstance(value, list):
        items = [shorten(item, depth + 1) for item in value[:MAX_ITEMS]]
        cut = any(c for _, c in items) or len(value) > MAX_ITEMS
        out = [v for v, _ in items]
        if len(value) > MAX_ITEMS:
            out.append(f"… (+{len(value) - MAX_ITEMS} more items)")
        return out, cut
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        cut = len(value) > MAX_ITEMS
        for key, item in list(value.items())[:MAX_ITEMS]:
            result[str(key)], was_cut = shorten(item, depth + 1)
            cut = cut or was_cut
        if len(value) > MAX_ITEMS:
            result["…"] = f"+{len(value) - MAX_ITEMS} more keys"
        return result, cut
    return value, False


def pretty_json(value: Any) -> tuple[str, bool]:
    """Indented JSON of `value` shortened for the page, and whether it was shortened."""
    short, cut = shorten(value)
    text = json.dumps(short, indent=2, ensure_ascii=False, allow_nan=True)
    if lone_surrogate_path(short) is not None:  # shown as its escape, as the task sent it
        text = json.dumps(short, indent=2, ensure_ascii=True, allow_nan=True)
    if len(text) > MAX_TEXT:
        return text[:MAX_TEXT] + "\n… (cut: download the whole value)", True
    return text, cut


def parameter_type(param: TaskParameter) -> str | None:
    """What a parameter takes: from its schema when registered (`list[int]`), else its type."""
    if param.schema:
        return describe(param.schema)
    return param.type


def summary(description: str | None) -> str:
    """The first paragraph of a docstring, on one line."""
    if not description:
        return ""
    return " ".join(description.strip().split("\n\n", 1)[0].split())
