"""Whether a run's JSON input fits a task's parameters, as the worker and the server both judge.

The server knows a task only by what its worker registered: each parameter's name, whether it
has a default and, from Conveyor's SDK, its JSON Schema. `input_problem` checks an input against
that, with the same messages the worker gives for the same input, so a bad input is refused
before a run exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from conveyor._jsonschema import check


class InputMismatch(ValueError):
    """The input does not fit; the message says how (``"count: expected int, got 'abc'"``)."""


class RegisteredParameter(Protocol):
    """A parameter as registered (the server's `TaskParameter`, the SDK's `Parameter`)."""

    @property
    def name(self) -> str:
        """Its name."""

    @property
    def has_default(self) -> bool:
        """Whether it may be left out."""

    @property
    def schema(self) -> Mapping[str, Any] | None:
        """Its JSON Schema; None when its SDK published none."""


def input_problem(parameters: Sequence[RegisteredParameter], payload: Any) -> str | None:
    """How ``payload`` breaks the parameters' published schemas.

    Args:
        parameters: The task's registered parameters, in order.
        payload: The run's input: a JSON array (positional) or object (keywords).

    Returns:
        None when the input fits, or when some parameter has no schema (a task of Render's SDK,
        or one taking ``*args``/``**kwargs``: its worker judges alone); else the problem.
    """
    if not parameters or any(p.schema is None for p in parameters):
        return None
    signature = [(p.name, p.has_default) for p in parameters]
    try:
        values = bind_values(signature, payload)
        for parameter in parameters:
            if parameter.name in values and parameter.schema:
                problem = check(parameter.schema, values[parameter.name], parameter.name)
                if problem:
                    return problem
        check_required(signature, values)
    except InputMismatch as exc:
        return str(exc)
    return None


def bind_values(parameters: Sequence[tuple[str, bool]], payload: Any) -> dict[str, Any]:
    """Each given input by parameter name.

    Args:
        parameters: ``(name, has_default)`` per parameter, in order; all positional-or-keyword.
        payload: A JSON array (positional) or object (keywords).

    Returns:
        The inputs by name (parameters left to their defaults are absent).

    Raises:
        InputMismatch: Too many inputs, or an unknown name.
    """
    if isinstance(payload, list):
        if len(payload) > len(parameters):
            raise InputMismatch(_arity(parameters, len(payload)))
        values = {name: value for (name, _), value in zip(parameters, payload, strict=False)}
    elif isinstance(payload, dict):
        names = {name for name, _ in parameters}
        unknown = [key for key in payload if key not in names]
        if unknown:
            expected = ", ".join(repr(name) for name, _ in parameters) or "none"
            raise InputMismatch(f"unexpected input {unknown[0]!r} (inputs: {expected})")
        values = dict(payload)
    else:
        raise InputMismatch(f"input must be a JSON array or object, got {type(payload).__name__}")
    return values


def check_required(parameters: Sequence[tuple[str, bool]], values: Mapping[str, Any]) -> None:
    """Raises `InputMismatch` naming the first parameter without a default left out."""
    for name, has_default in parameters:
        if name not in values and not has_default:
            raise InputMismatch(f"missing required input {name!r}")


def _arity(parameters: Sequence[tuple[str, bool]], given: int) -> str:
    total = len(parameters)
    if total == 0:
        return f"takes no inputs, got {given}"
    most = "" if all(not has_default for _, has_default in parameters) else "at most "
    return f"takes {most}{total} input{'s' if total > 1 else ''}, got {given}"
