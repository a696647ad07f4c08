"""A parameter's annotation as a JSON Schema, and how its JSON value becomes the annotated type.

JSON's own types (``int``, ``float``, ``str``, ``bool``, ``None``, ``list[...]``,
``dict[str, ...]``, unions, ``Literal`` and ``TypedDict``) are described here without pydantic:
their values arrive as decoded JSON, so they need checking but no conversion, and a worker
whose tasks use only them never imports pydantic. Anything else (pydantic models, dataclasses,
enums, datetimes, tuples, ``Annotated`` constraints…) goes through a pydantic ``TypeAdapter`` in
strict JSON mode, which also builds the value the task receives (a model instance, say).
The schemas produced here are the ones pydantic would produce (titles aside).
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor._jsonschema import short_repr

Convert = Callable[[Any, str], Any]

_SCALARS: dict[Any, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    None: {"type": "null"},
    type(None): {"type": "null"},
}
_LITERAL_TYPES = {int: "integer", str: "string", bool: "boolean", type(None): "null"}


class ConversionError(ValueError):
    """Pydantic refused a value the schema check let through; the message names where."""


@dataclass(frozen=True)
class ParameterType:
    """What a parameter accepts.

    Attributes:
        schema: Its JSON Schema; ``{}`` accepts any value.
        convert: Builds the annotated value from decoded JSON (the parameter's name is the second
            argument, for messages); None when the decoded JSON is the value.
    """

    schema: dict[str, Any]
    convert: Convert | None = None


ANY = ParameterType({})


def parameter_type(annotation: Any) -> ParameterType:
    """The schema and converter of an evaluated annotation.

    Args:
        annotation: The annotation; ``inspect.Parameter.empty`` when there is none.

    Returns:
        Its `ParameterType`; `ANY` for a type neither this module nor pydantic can describe.
    """
    native = native_schema(annotation)
    if native is not None:
        return ParameterType(native)
    return _pydantic_type(annotation)


def native_schema(annotation: Any) -> dict[str, Any] | None:
    """The schema of a JSON-native annotation; None when pydantic is needed."""
    if annotation is Any or annotation is object or annotation is inspect.Parameter.empty:
        return {}
    if annotation in _SCALARS:
        return dict(_SCALARS[annotation])
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is list or (origin is list and len(args) <= 1):
        items = native_schema(args[0]) if args else {}
        return None if items is None else {"items": items, "type": "array"}
    if annotation is dict or (origin is dict and len(args) in (0, 2)):
        return _dict_schema(args)
    if origin is typing.Union or origin is types.UnionType:
        branches = [native_schema(arg) for arg in args]
        if any(b is None for b in branches):
            return None
        return {"anyOf": branches}
    if origin is typing.Literal:
        return _literal_schema(args)
    if _is_typed_dict(annotation):
        return _typed_dict_schema(annotation)
    return None


def _dict_schema(args: tuple[Any, ...]) -> dict[str, Any] | None:
    if args and args[0] is not str:
        return None
    values = native_schema(args[1]) if args else {}
    if values is None:
        return None
    return {"additionalProperties": values or True, "type": "object"}


def _literal_schema(args: tuple[Any, ...]) -> dict[str, Any] | None:
    kinds = {type(arg) for arg in args}
    if not kinds <= set(_LITERAL_TYPES):
        return None
    schema: dict[str, Any] = {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
    if len(kinds) == 1:
        schema["type"] = _LITERAL_TYPES[kinds.pop()]
    return schema


def _is_typed_dict(annotation: Any) -> bool:
    # typing's and typing_extensions' TypedDicts differ in class; both have these markers
    return (
        isinstance(annotation, type)
        and issubclass(annotation, dict)
        and hasattr(annotation, "__required_keys__")
    )


def _typed_dict_schema(annotation: Any) -> dict[str, Any] | None:
    try:
        hints = typing.get_type_hints(annotation)
    except Exception:  # an unresolvable forward reference: let pydantic try
        return None
    properties: dict[str, Any] = {}
    for key, hint in hints.items():
        field = native_schema(hint)
        if field is None:
            return None
        properties[key] = field
    required = [key for key in hints if key in annotation.__required_keys__]
    schema: dict[str, Any] = {"properties": properties}
    if required:
        schema["required"] = required
    return {**schema, "title": annotation.__name__, "type": "object"}


def _pydantic_type(annotation: Any) -> ParameterType:
    try:
        from pydantic import TypeAdapter

        adapter: Any = TypeAdapter(annotation)
        schema = adapter.json_schema()
    except Exception:  # a type pydantic cannot describe: unchecked, as before typed inputs
        return ANY

    def convert(value: Any, path: str) -> Any:
        from pydantic import ValidationError

        try:
            return adapter.validate_json(json.dumps(value), strict=True)
        except ValidationError as exc:
            raise ConversionError(_first_problem(exc, path)) from None

    return ParameterType(schema, convert)


def _first_problem(exc: Any, path: str) -> str:
    error = exc.errors()[0]
    where = path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
    message = str(error["msg"])
    message = message[:1].lower() + message[1:]
    return f"{where}: {message}, got {short_repr(error.get('input'))}"
