"""A task's inputs: its parameters as registered, and a run's JSON input turned into arguments.

Built once per task, on first use (`TaskDefinition.inputs`), so defining tasks stays cheap and a
worker describes only the task it runs. Each given input is checked against its parameter's
schema (`conveyor._jsonschema`, the same check the server makes) and, for types beyond JSON's
own, built by pydantic; a mismatch raises `InvalidInputError`, which fails the run at once.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from typing import Any

from conveyor._annotations import ANY, ConversionError, ParameterType, parameter_type
from conveyor._input_check import InputMismatch, bind_values, check_required
from conveyor._jsonschema import check
from conveyor._signature import Parameter
from conveyor.errors import InvalidInputError

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class TaskInputs:
    """The parameters of one task function, without its context parameter."""

    def __init__(self, func: Callable[..., Any], task_name: str, with_context: bool) -> None:
        """Reads the signature and describes each parameter's type.

        Args:
            func: The task function.
            task_name: The task's name, for messages.
            with_context: Whether its first parameter is the context.
        """
        self._func = func
        self._task_name = task_name
        self._with_context = with_context
        params = list(inspect.signature(func).parameters.values())[1 if with_context else 0 :]
        hints = _evaluated_annotations(func)
        self._types: dict[str, ParameterType] = {
            p.name: parameter_type(hints.get(p.name, inspect.Parameter.empty))
            for p in params
            if p.kind not in _VARIADIC
        }
        self._plain = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
        self.parameters = tuple(self._describe(p) for p in params)

    def _describe(self, param: inspect.Parameter) -> Parameter:
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
        described = self._types.get(param.name)
        schema = described.schema if described is not None else None
        return Parameter(param.name, type_name, has_default, default_value, schema)

    def bind(self, payload: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Turns a run's input into call arguments (the context left out).

        Args:
            payload: A JSON array (positional) or object (keywords).

        Returns:
            The positional and keyword arguments, each checked and converted.

        Raises:
            InvalidInputError: The input does not fit the parameters.
        """
        try:
            if self._plain:
                return self._bind_plain(payload)
            return self._bind_signature(payload)
        except (InputMismatch, ConversionError) as exc:
            raise InvalidInputError(self._task_name, str(exc)) from None

    def _bind_plain(self, payload: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        signature = [(p.name, p.has_default) for p in self.parameters]
        values = bind_values(signature, payload)
        converted = {name: self._value(name, value) for name, value in values.items()}
        check_required(signature, converted)
        if isinstance(payload, list):
            return tuple(converted.values()), {}
        return (), converted

    def _bind_signature(self, payload: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if isinstance(payload, dict):
            args: tuple[Any, ...] = ()
            kwargs = dict(payload)
        elif isinstance(payload, list):
            args, kwargs = tuple(payload), {}
        else:
            raise InputMismatch(
                f"input must be a JSON array or object, got {type(payload).__name__}"
            )
        probe = (None, *args) if self._with_context else args
        try:
            bound = inspect.signature(self._func).bind(*probe, **kwargs)
        except TypeError as exc:
            raise InputMismatch(str(exc)) from None
        for name, value in bound.arguments.items():
            if name in self._types:
                bound.arguments[name] = self._value(name, value)
        call_args = bound.args[1:] if self._with_context else bound.args
        return tuple(call_args), dict(bound.kwargs)

    def _value(self, name: str, value: Any) -> Any:
        described = self._types.get(name, ANY)
        problem = check(described.schema, value, name) if described.schema else None
        if problem:
            raise InputMismatch(problem)
        return described.convert(value, name) if described.convert else value


def _evaluated_annotations(func: Callable[..., Any]) -> dict[str, Any]:
    """Annotations with strings evaluated; one that cannot be evaluated is left out (unchecked)."""
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:  # some name is unresolvable (a TYPE_CHECKING import): go one by one
        pass
    hints: dict[str, Any] = {}
    namespace = getattr(inspect.unwrap(func), "__globals__", {})
    for name, annotation in inspect.get_annotations(func).items():
        if not isinstance(annotation, str):
            hints[name] = annotation
            continue
        try:
            hints[name] = eval(annotation, namespace)
        except Exception:
            continue
    return hints
