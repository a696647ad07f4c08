"""Reading a task function's signature: whether it takes a context, and its inputs as registered."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_CONTEXT_NAME = "TaskContext"


@dataclass(frozen=True)
class Parameter:
    """One input of a task, as registered.

    Attributes:
        name: The parameter's name.
        type: The annotation's name, None without an annotation.
        has_default: Whether the parameter has a default.
        default_value: The default as a JSON string; None when absent, None or not JSON.
        schema: The JSON Schema of the values it accepts (``{}`` for any); None for ``*args``
            and ``**kwargs``, which the server leaves to the worker.
    """

    name: str
    type: str | None
    has_default: bool
    default_value: str | None = None
    schema: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The registration form of the parameter."""
        wire: dict[str, Any] = {"name": self.name}
        if self.type is not None:
            wire["type"] = self.type
        wire["has_default"] = self.has_default
        if self.default_value is not None:
            wire["default_value"] = self.default_value
        if self.schema is not None:
            wire["schema"] = self.schema
        return wire


def is_context_annotation(annotation: object) -> bool:
    """Whether an annotation names a TaskContext (Conveyor's, Render's, or the bare string).

    Args:
        annotation: A parameter's annotation, possibly a string.

    Returns:
        True for ``TaskContext`` classes of any module and strings ending in ``TaskContext``.
    """
    if isinstance(annotation, str):
        return annotation.strip("'\"").rsplit(".", 1)[-1] == _CONTEXT_NAME
    return getattr(annotation, "__name__", None) == _CONTEXT_NAME


def takes_context(func: Callable[..., Any]) -> bool:
    """Whether the function's first positional parameter is annotated as a TaskContext."""
    params = list(inspect.signature(func).parameters.values())
    if not params or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        return False
    if is_context_annotation(params[0].annotation):
        return True
    # A string annotation may name an alias (``RenderContext``): evaluate it when possible.
    try:
        resolved = inspect.get_annotations(func, eval_str=True).get(params[0].name)
    except Exception:
        return False
    return is_context_annotation(resolved)
