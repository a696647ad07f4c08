"""Payload rules shared by the worker and in-process runs: JSON, base64, result wrapping."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
import sys
import traceback
from dataclasses import dataclass
from typing import Any

from conveyor.errors import SerializationError


def encode_input(task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """JSON text of a call's input: an array for positional, an object for keywords.

    Args:
        task_name: The called task, for error messages.
        args: Positional inputs.
        kwargs: Keyword inputs.

    Returns:
        The JSON text.

    Raises:
        TypeError: Both positional and keyword inputs were given.
        SerializationError: The input is not JSON-serialisable.
    """
    if args and kwargs:
        raise TypeError(
            f"cannot mix positional and keyword inputs when calling task {task_name!r}: "
            "the input travels as one JSON array or one JSON object"
        )
    payload: list[Any] | dict[str, Any] = dict(kwargs) if kwargs else list(args)
    try:
        return json.dumps(payload, default=to_jsonable)
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"input of task {task_name!r} is not JSON-serialisable: {exc}"
        ) from None


def encode_output(task_name: str, result: Any) -> str:
    """JSON text of a result, wrapped in a one-element array unless it is a list (Render's rule).

    Args:
        task_name: The task that produced it, for error messages.
        result: The task's return value.

    Returns:
        The JSON text of an array.

    Raises:
        SerializationError: The result is not JSON-serialisable.
    """
    wrapped = result if isinstance(result, list) else [result]
    try:
        return json.dumps(wrapped, default=to_jsonable)
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"task {task_name!r} returned a value that is not JSON-serialisable: {exc}"
        ) from None


def to_jsonable(value: Any) -> Any:
    """JSON's view of the typed values a task may take or return (``json.dumps``'s ``default``).

    Pydantic models and dataclasses become objects (as pydantic dumps them in JSON mode), enums
    their value, dates and times ISO 8601 strings, UUIDs and decimals strings: what the receiving
    task's annotations turn back into the same types. Sets stay unserialisable, as in Render's
    SDK (JSON has no set, and a list would lose what the caller meant).

    Raises:
        TypeError: The value has no JSON form.
    """
    if hasattr(value, "model_dump") and callable(value.model_dump):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        try:
            from pydantic import TypeAdapter
        except ImportError:  # a worker's environment may have only the standard library
            return dataclasses.asdict(value)
        return TypeAdapter(type(value)).dump_python(value, mode="json")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    # Without the module imported, no value can be of its types: skip importing it here.
    for module, name in (("uuid", "UUID"), ("decimal", "Decimal")):
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(value, getattr(loaded, name)):
            return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def unwrap_output(output: Any) -> Any:
    """The caller's view of a result array: its element when it has exactly one."""
    if isinstance(output, list) and len(output) == 1:
        return output[0]
    return output


def b64_json(text: str) -> str:
    """Base64 of the UTF-8 bytes of JSON text."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def from_b64_json(data: str | None) -> Any:
    """Decodes base64 UTF-8 JSON; empty or absent data means ``[]``.

    Raises:
        ValueError: The data is not base64 of UTF-8 JSON.
    """
    if not data:
        return []
    return json.loads(base64.b64decode(data, validate=True).decode("utf-8"))


@dataclass(frozen=True)
class ErrorReport:
    """How a task's exception crosses the wire.

    Attributes:
        type: The exception class's qualified name.
        details: ``"<ExcClass>: <message>"`` (the class alone when the message is empty).
        stack_trace: The formatted traceback.
        retryable: False when another attempt cannot help (the input does not fit the task).
    """

    type: str
    details: str
    stack_trace: str
    retryable: bool = True

    @classmethod
    def from_exception(cls, exc: BaseException, *, retryable: bool = True) -> ErrorReport:
        """Describes an exception.

        Args:
            exc: The exception raised by the task.
            retryable: Whether another attempt could succeed.

        Returns:
            Its report.
        """
        name = type(exc).__qualname__
        message = str(exc)
        details = f"{name}: {message}" if message else name
        trace = "".join(traceback.format_exception(exc))
        return cls(type=name, details=details, stack_trace=trace, retryable=retryable)

    def to_wire(self) -> dict[str, Any]:
        """The ``error`` object of a callback."""
        wire: dict[str, Any] = {
            "details": self.details,
            "stack_trace": self.stack_trace,
            "type": self.type,
        }
        if not self.retryable:
            wire["retryable"] = False
        return wire
