"""A run's input from the "Run" form: one JSON field per registered parameter, or raw JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.api.json_input import MAX_DEPTH, lone_surrogate_path, nesting_depth
from core.domain import TaskParameter

FIELD_PREFIX = "param."
_STRING_TYPES = frozenset({"str", "string"})


@dataclass(frozen=True)
class InputProblem:
    field: str  # the form field to point at ("raw_input" or "param.<name>")
    message: str


# What the API refuses too (app.api.json_input): checked before parsing, and after.
def _too_deep(text: str) -> str | None:
    if nesting_depth(text.encode("utf-8", "surrogatepass")) <= MAX_DEPTH:
        return None
    return f"nests arrays or objects deeper than {MAX_DEPTH} levels"


def _lone_surrogate(value: Any) -> str | None:
    if lone_surrogate_path(value) is None:
        return None
    return "holds a lone UTF-16 surrogate (like \\ud800), which is not valid text"


def from_raw(text: str) -> tuple[Any, list[InputProblem]]:
    """The textarea's JSON: an array (positional) or an object (keywords)."""
    if not text.strip():
        return [], []
    if problem := _too_deep(text):
        return None, [InputProblem("raw_input", f"the input {problem}")]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [InputProblem("raw_input", f"not valid JSON: {exc.msg} at line {exc.lineno}")]
    if problem := _lone_surrogate(value):
        return None, [InputProblem("raw_input", f"the input {problem}")]
    if not isinstance(value, list | dict):
        return None, [
            InputProblem(
                "raw_input", f"the input must be a JSON array or object, not {type(value).__name__}"
            )
        ]
    return value, []


def from_fields(
    parameters: tuple[TaskParameter, ...], fields: dict[str, str]
) -> tuple[dict[str, Any], list[InputProblem]]:
    """Keyword input from one field per parameter; an empty field keeps the default.

    Values are JSON (`3`, `[1, 2]`, `"text"`); a parameter annotated `str` also takes bare text,
    because quoting every string by hand is what people get wrong first.
    """
    values: dict[str, Any] = {}
    problems: list[InputProblem] = []
    for param in parameters:
        name = FIELD_PREFIX + param.name
        text = fields.get(name, "").strip()
        if not text:
            if not param.has_default:
                problems.append(InputProblem(name, f"{param.name} is required"))
            continue
        if problem := _too_deep(text):
            problems.append(InputProblem(name, f"{param.name}: {problem}"))
            continue
        try:
            values[param.name] = json.loads(text)
            if problem := _lone_surrogate(values[param.name]):
                problems.append(InputProblem(name, f"{param.name}: {problem}"))
        except json.JSONDecodeError as exc:
            if (param.type or "").lower() in _STRING_TYPES:
                values[param.name] = text
                continue
            problems.append(
                InputProblem(
                    name,
                    f"{param.name}: not valid JSON ({exc.msg}); "
                    'write strings in double quotes, like "text"',
                )
            )
    return values, problems
