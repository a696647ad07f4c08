"""Query-string parsing: every bad value is a 400 that names the parameter."""

from __future__ import annotations

import math

from starlette.requests import Request

from core.errors import InvalidRequest

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def int_param(request: Request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def optional_int_param(request: Request, name: str, *, low: int, high: int) -> int | None:
    if request.query_params.get(name) is None:
        return None
    return int_param(request, name, default=low, low=low, high=high)


def float_param(request: Request, name: str, *, default: float, low: float, high: float) -> float:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low:g} and {high:g}, got {raw}")
    return value


def bool_param(request: Request, name: str, *, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidRequest(f"{name} must be true or false, got {raw!r}")


def list_param(request: Request, *names: str) -> list[str]:
    """Every value of the parameter, repeated (`a=1&a=2`) or comma-separated (`a=1,2`)."""
    values: list[str] = []
    for name in names:
        for raw in request.query_params.getlist(name):
            values.extend(part.strip() for part in raw.split(",") if part.strip())
    return list(dict.fromkeys(values))


def single_param(request: Request, *names: str) -> str | None:
    """One value; Render's clients send filters as lists, but one value is all we filter on."""
    values = list_param(request, *names)
    if len(values) > 1:
        raise InvalidRequest(f"{names[0]} accepts a single value, got {len(values)}")
    return values[0] if values else None
