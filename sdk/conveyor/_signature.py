"""Reading a task function's signature: the context parameter, inputs, and binding wire input."""

from __future__ import annotations

import inspect
import json
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
    """

    name: str
    type: str | None
    has_default: bool
    default_value: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The registration form of the parameter."""
        wire: dict[str, Any] = {"name": self.name}
        if self.type is not None:
            wire["type"] = self.type
        wire["has_default"] = self.has_default
        if self.default_value is not None:
            wire["default_value"] = self.default_value
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


def input_parameters(func: Callable[..., Any], with_context: bool) -> list[Parameter]:
    """The task's inputs (the context parameter left out).

    Args:
        func: The task function.
        with_context: Whether its first parameter is the context.

    Returns:
        One `Parameter` per input, in order.
    """
    params = list(inspect.signature(func).parameters.values())
    if with_context:
        params = params[1:]
    return [_describe(p) for p in params]


def _describe(param: inspect.Parameter) -> Parameter:
    type_name: str | None = None
    if param.annotation is not inspect.Parameter.empty:
        ann = param.annotation
        type_name = ann if isinstance(ann, str) else getattr(ann, "__name__", None) or str(ann)
    has_default = param.default is not inspect.Parameter.empty
    default_value: str | None = None
    if has_default and param.default is not None:
        try:
            default_value = json.dumps(param.default)
        except (TypeError, ValueError):
            default_value = None
    return Parameter(param.name, type_name, has_default, default_value)


def bind_input(
    func: Callable[..., Any],
    task_name: str,
    with_context: bool,
    payload: list[Any] | dict[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Turns wire input into call arguments, checking them against the signature.

    Args:
        func: The task function.
        task_name: The task's name, for the error message.
        with_context: Whether a context goes first (a placeholder stands in while binding).
        payload: A JSON array (positional) or object (keywords).

    Returns:
        The positional and keyword arguments, without the context.

    Raises:
        TypeError: The input does not fit the task's parameters; the message names the task.
    """
    if isinstance(payload, dict):
        args: tuple[Any, ...] = ()
        kwargs = dict(payload)
    elif isinstance(payload, list):
        args, kwargs = tuple(payload), {}
    else:
        raise TypeError(
            f"task {task_name!r} input must be a JSON array or object, got {type(payload).__name__}"
        )
    probe = (None, *args) if with_context else args
    try:
        inspect.signature(func).bind(*probe, **kwargs)
    except TypeError as exc:
        raise TypeError(f"task {task_name!r} cannot take this input: {exc}") from None
    return args, kwargs
