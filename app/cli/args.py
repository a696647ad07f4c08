"""Turning `conveyor run` arguments into a task's JSON input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from app.typed_text import parse_typed


def parse_arg(text: str) -> Any:
    """JSON when it parses (`7` → 7, `'"x"'` → "x", `[1]` → [1]); the plain string otherwise."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_typed_arg(text: str, schema: dict[str, Any] | None) -> Any:
    """An argument read by its parameter's schema (`app.typed_text`), so the server refuses
    what does not fit with its message; without a schema (Render's SDK) it is `parse_arg`.
    """
    return parse_arg(text) if schema is None else parse_typed(text, schema)


def typed_args(args: tuple[str, ...], parameters: list[dict[str, Any]]) -> list[Any]:
    """Positional ARGS read by the schemas of the task's parameters (the API's task shape)."""
    schemas = [p.get("schema") for p in parameters]
    return [
        parse_typed_arg(text, schemas[i] if i < len(schemas) else None)
        for i, text in enumerate(args)
    ]


def run_input(args: tuple[str, ...], input_json: str | None, input_file: Path | None) -> Any:
    """The input to send: positional ARGS as an array, or `--input`/`--input-file` whole."""
    given = [
        name
        for name, value in (("ARGS", args), ("--input", input_json), ("--input-file", input_file))
        if value
    ]
    if len(given) > 1:
        raise click.UsageError(f"give only one of {' / '.join(given)}")
    if input_file is not None:
        return _whole(input_file.read_text(encoding="utf-8"), str(input_file))
    if input_json is not None:
        return _whole(input_json, "--input")
    return [parse_arg(arg) for arg in args]


def _whole(text: str, origin: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.UsageError(f"{origin} is not valid JSON: {exc}") from None
    if not isinstance(value, list | dict):
        raise click.UsageError(f"{origin} must be a JSON array or object")
    return value
