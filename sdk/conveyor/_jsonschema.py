"""Checking decoded JSON against the JSON Schema subset pydantic emits for task parameters.

The worker, the server (``POST /v1/task-runs``), the CLI and the dashboard all check input with
this one module, so a value is refused everywhere with the same message. It understands
``type``, ``enum``, ``const``, ``anyOf``/``oneOf``/``allOf``, ``$ref`` into ``$defs``,
``properties``/``required``/``additionalProperties``, ``items``/``prefixItems``, and the bounds
``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum``/``minLength``/``maxLength``/
``minItems``/``maxItems``. Any other keyword (``format``, ``pattern``, ``uniqueItems``…) is left
to the worker's pydantic, so this check never refuses what the task itself would accept.

Semantics are pydantic's strict JSON mode: ``"3"`` is not an integer, nor is ``3.0`` or ``true``;
an integer is a valid number.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

Schema = Mapping[str, Any]

_TYPE_NAMES = {
    "integer": "int",
    "number": "float",
    "string": "str",
    "boolean": "bool",
    "null": "None",
    "array": "list",
    "object": "dict",
}
_REPR_LIMIT = 60


def check(schema: Schema, value: Any, path: str, root: Schema | None = None) -> str | None:
    """The first way ``value`` breaks ``schema``, as ``"<path>: <problem>"``; None if it fits.

    Args:
        schema: A JSON Schema (a parameter's, as registered).
        value: Decoded JSON.
        path: Where the value sits, for the message (the parameter's name).
        root: The schema holding ``$defs``; ``schema`` itself by default.

    Returns:
        None when the value fits, else a message such as ``"count: expected int, got 'abc'"``.
    """
    return _Checker(root if root is not None else schema).check(schema, value, path)


def describe(schema: Schema, root: Schema | None = None) -> str:
    """A short, Python-flavoured name of what a schema accepts (``list[int]``, ``int | None``)."""
    return _Checker(root if root is not None else schema).describe(schema)


def accepts_string(schema: Schema, root: Schema | None = None) -> bool:
    """Whether a JSON string could fit the schema (its type, enum or a branch allows one)."""
    return _Checker(root if root is not None else schema).accepts_string(schema)


def short_repr(value: Any) -> str:
    """``repr`` cut to a readable length."""
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _fits_type(name: str, value: Any) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, dict)
    return True  # a type this module does not know: left to the worker


class _Checker:
    def __init__(self, root: Schema) -> None:
        self._defs: Mapping[str, Any] = root.get("$defs") or root.get("definitions") or {}

    def resolve(self, schema: Schema) -> Schema:
        seen = 0
        while isinstance(schema.get("$ref"), str) and seen < 32:
            name = schema["$ref"].rsplit("/", 1)[-1]
            target = self._defs.get(name)
            if not isinstance(target, Mapping):
                return {}
            # Keywords beside a $ref (a default, a description) do not constrain the value.
            schema, seen = target, seen + 1
        return schema

    def check(self, schema: Schema, value: Any, path: str) -> str | None:
        schema = self.resolve(schema)
        if "enum" in schema and not any(_same(value, v) for v in schema["enum"]):
            options = ", ".join(short_repr(v) for v in schema["enum"])
            return f"{path}: expected one of {options}, got {short_repr(value)}"
        if "const" in schema and not _same(value, schema["const"]):
            return f"{path}: expected {short_repr(schema['const'])}, got {short_repr(value)}"
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                problem = self._check_union(schema, schema[key], value, path)
                if problem:
                    return problem
        for branch in schema.get("allOf") or ():
            problem = self.check(branch, value, path)
            if problem:
                return problem
        types = schema.get("type")
        if types is not None:
            names = types if isinstance(types, list) else [types]
            if not any(_fits_type(t, value) for t in names):
                return self._mismatch(schema, value, path)
        return self._bounds(schema, value, path) or self._inside(schema, value, path)

    def _check_union(
        self, schema: Schema, branches: list[Any], value: Any, path: str
    ) -> str | None:
        problems = [self.check(branch, value, path) for branch in branches]
        if any(p is None for p in problems):
            return None
        # One branch of the value's own kind: its deeper problem says the most.
        kind = [
            p
            for branch, p in zip(branches, problems, strict=True)
            if self._kind_fits(branch, value)
        ]
        if len(kind) == 1:
            return kind[0]
        return self._mismatch(schema, value, path)

    def _kind_fits(self, schema: Schema, value: Any) -> bool:
        schema = self.resolve(schema)
        types = schema.get("type")
        if types is None:
            return False
        names = types if isinstance(types, list) else [types]
        return any(_fits_type(t, value) for t in names)

    def _mismatch(self, schema: Schema, value: Any, path: str) -> str:
        return f"{path}: expected {self.describe(schema)}, got {short_repr(value)}"

    def _bounds(self, schema: Schema, value: Any, path: str) -> str | None:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number:
            for key, fails, word in (
                ("minimum", operator.lt, ">="),
                ("maximum", operator.gt, "<="),
                ("exclusiveMinimum", operator.le, ">"),
                ("exclusiveMaximum", operator.ge, "<"),
            ):
                bound = schema.get(key)
                if isinstance(bound, int | float) and fails(value, bound):
                    return f"{path}: expected {self.describe(schema)} {word} {bound}, got {value!r}"
        if isinstance(value, str | list):
            unit = "characters" if isinstance(value, str) else "items"
            low, high = (
                _bound(schema, "minLength", "minItems", value),
                _bound(schema, "maxLength", "maxItems", value),
            )
            if low is not None and len(value) < low:
                return f"{path}: expected at least {low} {unit}, got {short_repr(value)}"
            if high is not None and len(value) > high:
                return f"{path}: expected at most {high} {unit}, got {short_repr(value)}"
        return None

    def _inside(self, schema: Schema, value: Any, path: str) -> str | None:
        if isinstance(value, list):
            return self._items(schema, value, path)
        if isinstance(value, dict):
            return self._fields(schema, value, path)
        return None

    def _items(self, schema: Schema, value: list[Any], path: str) -> str | None:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            for index, (item_schema, item) in enumerate(zip(prefix, value, strict=False)):
                problem = self.check(item_schema, item, f"{path}[{index}]")
                if problem:
                    return problem
        rest = schema.get("items")
        if isinstance(rest, Mapping):
            start = len(prefix) if isinstance(prefix, list) else 0
            for index in range(start, len(value)):
                problem = self.check(rest, value[index], f"{path}[{index}]")
                if problem:
                    return problem
        return None

    def _fields(self, schema: Schema, value: dict[str, Any], path: str) -> str | None:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        for name in schema.get("required") or ():
            if name not in value:
                return f"{path}: missing required field {name!r}"
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                problem = self.check(properties[key], item, _field_path(path, key))
            elif extra is False:
                problem = f"{path}: unexpected field {key!r}"
            elif isinstance(extra, Mapping):
                problem = self.check(extra, item, f"{path}[{key!r}]")
            else:
                problem = None
            if problem:
                return problem
        return None

    def describe(self, schema: Schema) -> str:
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                return " | ".join(dict.fromkeys(self.describe(b) for b in schema[key]))
        if isinstance(schema.get("title"), str) and ("enum" in schema or "properties" in schema):
            return str(schema["title"])
        if "enum" in schema:
            return "one of " + ", ".join(short_repr(v) for v in schema["enum"])
        if "const" in schema:
            return short_repr(schema["const"])
        types = schema.get("type")
        if isinstance(types, list):
            return " | ".join(self.describe({**schema, "type": t}) for t in types)
        if types == "array":
            return self._describe_array(schema)
        if types == "object":
            extra = schema.get("additionalProperties")
            return f"dict[str, {self.describe(extra)}]" if isinstance(extra, Mapping) else "dict"
        if types == "string" and isinstance(schema.get("format"), str):
            return f"{schema['format']} string"
        if isinstance(types, str):
            return _TYPE_NAMES.get(types, types)
        return "any value"

    def _describe_array(self, schema: Schema) -> str:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            return f"tuple[{', '.join(self.describe(p) for p in prefix)}]"
        items = schema.get("items")
        return f"list[{self.describe(items)}]" if isinstance(items, Mapping) and items else "list"

    def accepts_string(self, schema: Schema) -> bool:
        schema = self.resolve(schema)
        if "enum" in schema:
            return any(isinstance(v, str) for v in schema["enum"])
        if "const" in schema:
            return isinstance(schema["const"], str)
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                return any(self.accepts_string(b) for b in schema[key])
        types = schema.get("type")
        if types is None:
            return True
        return "string" in (types if isinstance(types, list) else [types])


def _bound(schema: Schema, text_key: str, list_key: str, value: str | list[Any]) -> int | None:
    bound = schema.get(text_key if isinstance(value, str) else list_key)
    return bound if isinstance(bound, int) and not isinstance(bound, bool) else None


def _field_path(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"


def _same(value: Any, expected: Any) -> bool:
    """JSON equality: ``True`` is not ``1`` and ``1`` is ``1.0``."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value is expected
    return bool(type(value) is type(expected) or _both_numbers(value, expected)) and bool(
        value == expected
    )


def _both_numbers(a: Any, b: Any) -> bool:
    return isinstance(a, int | float) and isinstance(b, int | float)
