"""Text a person typed for a parameter (a CLI argument, a form field) as the JSON value meant."""

from __future__ import annotations

import json
from typing import Any

from conveyor._jsonschema import accepts_string, check


def parse_typed(text: str, schema: dict[str, Any]) -> Any:
    """The value of ``text`` for a parameter of that JSON Schema.

    Text stays text where a string fits (``42`` for a ``str`` parameter is ``"42"``); JSON
    otherwise (``3``, ``[1, 2]``, ``null`` for an ``int | None``). Text that fits nothing
    (``three`` for an ``int``) is returned as text, for the schema check to refuse with its
    message.
    """
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, str) or check(schema, value, "") is None:
        return value
    return text if accepts_string(schema) else value
