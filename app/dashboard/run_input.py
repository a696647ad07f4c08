"""A run's input from the "Run" form: one field per parameter, shaped by its type, or raw JSON.

A parameter whose SDK registered a JSON Schema gets the field its type calls for: a number
input for `int` and `float`, a checkbox for `bool`, a text input for `str`, a list of choices for
an enum or `Literal`, and a JSON text area for lists, objects and anything else. Each value is
then checked against the schema with the worker's own check, so a mistake is shown at its field
before any run exists. Parameters without a schema (Render's SDK) take JSON, or bare text when
annotated `str`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.api.json_input import MAX_DEPTH, lone_surrogate_path, nesting_depth
from app.typed_text import parse_typed
from conveyor._jsonschema import check, describe
from core.domain import TaskParameter

FIELD_PREFIX = "param."
_STRING_TYPES = frozenset({"str", "string"})
_SCALAR_KINDS = {"integer": "integer", "number": "number", "string": "text", "boolean": "checkbox"}


@dataclass(frozen=True)
class InputProblem:
    field: str  # the form field to point at ("raw_input" or "param.<name>")
    message: str


@dataclass(frozen=True)
class Field:
    """How one parameter is asked for.

    Attributes:
        name: The form field's name (``param.<parameter>``).
        parameter: The parameter.
        kind: ``integer``, ``number``, ``text``, ``checkbox``, ``choice`` or ``json``.
        type_text: What it takes, in Python's words (``list[int]``, ``Point``).
        choices: For ``choice``: (JSON of the value, label) pairs.
    """

    name: str
    parameter: TaskParameter
    kind: str
    type_text: str
    choices: tuple[tuple[str, str], ...] = ()

    @property
    def default_json(self) -> str:
        """The default as registered (JSON text); "null" for a None default."""
        return self.parameter.default_value or "null"

    def checked(self, fields: dict[str, str]) -> bool:
        """Whether a checkbox shows as ticked: as submitted, else the default."""
        if self.name in fields:
            return fields[self.name] == "true"
        return self.parameter.default_value == "true"


def form_fields(parameters: tuple[TaskParameter, ...]) -> list[Field]:
    """One `Field` per parameter, in order."""
    return [_field(p) for p in parameters]


def _field(param: TaskParameter) -> Field:
    name = FIELD_PREFIX + param.name
    schema = param.schema
    if schema is None:
        return Field(name, param, "json", param.type or "JSON")
    type_text = describe(schema) if schema else (param.type or "any JSON")
    if isinstance(schema.get("enum"), list) and all(
        isinstance(v, str | int | float | bool) for v in schema["enum"]
    ):
        choices = tuple((json.dumps(v), str(v)) for v in schema["enum"])
        return Field(name, param, "choice", type_text, choices)
    type_name = schema.get("type")
    kind = _SCALAR_KINDS.get(type_name) if isinstance(type_name, str) else None
    return Field(name, param, kind or "json", type_text)


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

    Every problem is reported, each at its field: a required field left empty, JSON that does
    not parse, a value that does not fit the parameter's schema.
    """
    values: dict[str, Any] = {}
    problems: list[InputProblem] = []
    for field in form_fields(parameters):
        param = field.parameter
        text = fields.get(field.name, "")
        if field.kind != "text":
            text = text.strip()
        if field.kind == "checkbox":
            values[param.name] = text == "true"
            continue
        if not text:
            if not param.has_default:
                problems.append(InputProblem(field.name, f"{param.name} is required"))
            continue
        if problem := _too_deep(text):
            problems.append(InputProblem(field.name, f"{param.name}: {problem}"))
            continue
        try:
            value = _value(field, text)
        except json.JSONDecodeError as exc:
            problems.append(
                InputProblem(
                    field.name,
                    f"{param.name}: not valid JSON ({exc.msg}); "
                    'write strings in double quotes, like "text"',
                )
            )
            continue
        problem = _lone_surrogate(value)
        if problem:
            problems.append(InputProblem(field.name, f"{param.name}: {problem}"))
            continue
        problem = check(param.schema, value, param.name) if param.schema else None
        if problem:
            problems.append(InputProblem(field.name, problem))
            continue
        values[param.name] = value
    return values, problems


def _value(field: Field, text: str) -> Any:
    schema = field.parameter.schema
    if field.kind == "text":
        return text
    if field.kind in ("integer", "number") and schema is not None:
        return parse_typed(text, schema)
    if field.kind == "choice":
        return json.loads(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        if schema is None and (field.parameter.type or "").lower() in _STRING_TYPES:
            return text  # quoting every string by hand is what people get wrong first
        raise
