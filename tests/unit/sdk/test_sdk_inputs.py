"""Typed inputs: annotations as JSON Schemas, the checks and their messages, conversions."""

from __future__ import annotations

import asyncio
import datetime
import enum
import subprocess
import sys
import typing
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional

import pytest
import typing_extensions
from pydantic import BaseModel, Field, TypeAdapter

from conveyor import InvalidInputError, Retry, TaskContext, Workflows
from conveyor._annotations import native_schema
from conveyor._input_check import input_problem
from conveyor._inputs import TaskInputs
from conveyor._signature import Parameter


class Point(BaseModel):
    x: int
    y: int


@dataclass
class Box:
    label: str
    sizes: list[float]


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Options(typing.TypedDict):
    depth: int
    names: list[str]


class PortableOptions(typing_extensions.TypedDict):
    depth: int
    names: list[str]


def inputs_of(annotation: Any) -> TaskInputs:
    """The inputs of a task taking one parameter `p` annotated so."""

    def task(p):  # type: ignore[no-untyped-def]
        return p

    task.__annotations__ = {"p": annotation}
    return TaskInputs(task, "t", with_context=False)


def without_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: without_titles(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [without_titles(v) for v in schema]
    return schema


@pytest.mark.parametrize(
    "annotation",
    [
        int,
        float,
        str,
        bool,
        type(None),
        Any,
        list,
        dict,
        list[int],
        dict[str, float],
        dict[str, Any],
        Optional[int],  # noqa: UP045 - the typing spelling is the case
        int | str | None,
        list[dict[str, int | None]],
        Literal["a"],
        Literal["a", "b"],
        Literal[1, "a"],
        PortableOptions,
    ],
)
def test_json_native_schemas_are_pydantics(annotation: Any) -> None:
    ours = without_titles(native_schema(annotation))
    assert ours == without_titles(TypeAdapter(annotation).json_schema())


def test_typing_typeddict_is_described_without_pydantic() -> None:
    # pydantic refuses typing.TypedDict before Python 3.12; its values are plain dicts anyway
    assert native_schema(Options) == {
        "properties": {
            "depth": {"type": "integer"},
            "names": {"items": {"type": "string"}, "type": "array"},
        },
        "required": ["depth", "names"],
        "title": "Options",
        "type": "object",
    }


SERVER_TOO = True  # the server's schema check finds the same problem
WORKER_ONLY = False  # only pydantic, in the worker, can tell (a format, a pattern)

CASES: list[tuple[Any, Any, str | None, bool]] = [
    (int, 3, None, SERVER_TOO),
    (int, "3", "p: expected int, got '3'", SERVER_TOO),
    (int, 3.0, "p: expected int, got 3.0", SERVER_TOO),
    (int, True, "p: expected int, got True", SERVER_TOO),
    (float, 3, None, SERVER_TOO),
    (float, "1.5", "p: expected float, got '1.5'", SERVER_TOO),
    (bool, 1, "p: expected bool, got 1", SERVER_TOO),
    (str, 3, "p: expected str, got 3", SERVER_TOO),
    (list[int], [1, "a"], "p[1]: expected int, got 'a'", SERVER_TOO),
    (list[int], "abc", "p: expected list[int], got 'abc'", SERVER_TOO),
    (dict[str, int], {"a": "b"}, "p['a']: expected int, got 'b'", SERVER_TOO),
    (Optional[int], None, None, SERVER_TOO),  # noqa: UP045
    (Optional[int], "x", "p: expected int | None, got 'x'", SERVER_TOO),  # noqa: UP045
    (int | str, [1], "p: expected int | str, got [1]", SERVER_TOO),
    (Literal["a", "b"], "c", "p: expected one of 'a', 'b', got 'c'", SERVER_TOO),
    (Point, {"x": 1, "y": 2}, None, SERVER_TOO),
    (Point, {"x": 1, "y": "2"}, "p.y: expected int, got '2'", SERVER_TOO),
    (Point, {"x": 1}, "p: missing required field 'y'", SERVER_TOO),
    (Point, [1, 2], "p: expected Point, got [1, 2]", SERVER_TOO),
    (Point | None, {"x": "a", "y": 1}, "p.x: expected int, got 'a'", SERVER_TOO),
    (list[Point], [{"x": 1, "y": 2}, {"x": 1}], "p[1]: missing required field 'y'", SERVER_TOO),
    (Box, {"label": "b", "sizes": [1, 2.5]}, None, SERVER_TOO),
    (Box, {"label": "b", "sizes": ["1"]}, "p.sizes[0]: expected float, got '1'", SERVER_TOO),
    (Options, {"depth": 1, "names": ["a"]}, None, SERVER_TOO),
    (Options, {"depth": "1", "names": []}, "p.depth: expected int, got '1'", SERVER_TOO),
    (Color, "red", None, SERVER_TOO),
    (Color, "blue", "p: expected one of 'red', 'green', got 'blue'", SERVER_TOO),
    (datetime.datetime, "2024-05-01T12:00:00Z", None, SERVER_TOO),
    (datetime.datetime, 3, "p: expected date-time string, got 3", SERVER_TOO),
    (Annotated[int, Field(ge=0)], -1, "p: expected int >= 0, got -1", SERVER_TOO),
    (
        Annotated[str, Field(max_length=3)],
        "abcd",
        "p: expected at most 3 characters, got 'abcd'",
        SERVER_TOO,
    ),
    (tuple[int, str], [1, "a"], None, SERVER_TOO),
    (tuple[int, str], [1, 2], "p[1]: expected str, got 2", SERVER_TOO),
    (tuple[int, str], [1, "a", 3], "p: expected at most 2 items, got [1, 'a', 3]", SERVER_TOO),
    (uuid.UUID, "not-a-uuid", "p: input should be a valid UUID", WORKER_ONLY),
    (datetime.date, "yesterday", "p: input should be a valid date", WORKER_ONLY),
]


@pytest.mark.parametrize(("annotation", "value", "problem", "server_too"), CASES)
def test_the_worker_and_the_server_judge_alike(
    annotation: Any, value: Any, problem: str | None, server_too: bool
) -> None:
    inputs = inputs_of(annotation)
    server = input_problem(inputs.parameters, [value])
    if problem is None:
        inputs.bind([value])
        assert server is None
        return
    with pytest.raises(InvalidInputError) as caught:
        inputs.bind([value])
    assert caught.value.task_name == "t"
    assert caught.value.problem.startswith(problem)
    assert str(caught.value) == f"task 't' cannot take this input: {caught.value.problem}"
    if server_too:
        assert server == caught.value.problem
    else:
        assert server is None, "the server must never refuse what the worker accepts"


def test_values_arrive_as_the_annotated_types() -> None:
    app = Workflows()

    @app.task
    def typed(
        point: Point, box: Box, color: Color, when: datetime.datetime, pair: tuple[int, str]
    ) -> str:
        return repr((point, box, color, when, pair))

    args, _ = typed.inputs.bind(
        [{"x": 1, "y": 2}, {"label": "b", "sizes": [1]}, "green", "2024-05-01T12:00:00Z", [1, "a"]]
    )
    assert args == (
        Point(x=1, y=2),
        Box(label="b", sizes=[1.0]),
        Color.GREEN,
        datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC),
        (1, "a"),
    )


def test_json_values_arrive_unchanged() -> None:
    nested = {"a": [1, 2.5, None]}
    args, kwargs = inputs_of(dict[str, list[float | None]]).bind({"p": nested})
    assert args == () and kwargs["p"] is nested


def test_arity_problems() -> None:
    app = Workflows()

    @app.task
    def pair(a: int, b: int = 2) -> int:
        return a + b

    @app.task
    def nothing() -> None:
        return None

    cases = [
        (pair, [1, 2, 3], "takes at most 2 inputs, got 3"),
        (pair, {"a": 1, "c": 2}, "unexpected input 'c' (inputs: 'a', 'b')"),
        (pair, {"b": 1}, "missing required input 'a'"),
        (pair, ["x"], "a: expected int, got 'x'"),
        (pair, "ab", "input must be a JSON array or object, got str"),
    ]
    for task, payload, problem in cases:
        with pytest.raises(InvalidInputError) as caught:
            task.inputs.bind(payload)
        assert caught.value.problem == problem
        assert input_problem(task.parameters, payload) == problem
    with pytest.raises(InvalidInputError, match="takes no inputs, got 1"):
        nothing.inputs.bind([1])
    # a task without parameters registers none: the server cannot tell it from Render's
    assert input_problem(nothing.parameters, [1]) is None


def test_other_signatures_bind_like_python() -> None:
    app = Workflows()

    @app.task
    def flexible(ctx: TaskContext, a: int, /, *rest: int, scale: float = 1.0, **extra: str) -> None:
        return None

    args, kwargs = flexible.inputs.bind([1, 2, 3])
    assert (args, kwargs) == ((1, 2, 3), {})
    with pytest.raises(InvalidInputError, match="a: expected int, got 'x'"):
        flexible.inputs.bind(["x"])
    with pytest.raises(InvalidInputError, match="missing a required argument: 'a'"):
        flexible.inputs.bind({"scale": 2.0})
    # *rest and **extra publish no schema: the server leaves such a task to its worker
    assert [p.schema for p in flexible.parameters] == [
        {"type": "integer"},
        None,
        {"type": "number"},
        None,
    ]
    assert input_problem(flexible.parameters, ["x"]) is None


def test_unknown_types_are_left_unchecked() -> None:
    class Plain:
        pass

    def task(a: Plain, b: MissingName) -> None:  # type: ignore[name-defined] # noqa: F821
        return None

    inputs = TaskInputs(task, "t", with_context=False)
    assert [p.schema for p in inputs.parameters] == [{}, {}]
    assert inputs.bind([{"any": "thing"}, 3]) == (({"any": "thing"}, 3), {})


def test_render_tasks_are_not_checked_by_the_server() -> None:
    registered = [Parameter("a", "int", False), Parameter("b", "int", False)]  # no schema
    assert input_problem(registered, ["three", 4]) is None


def test_bad_input_is_not_retried_in_process() -> None:
    calls: list[int] = []
    local = Workflows(default_retry=Retry(max_retries=3))

    @local.task
    def counted(n: int) -> int:
        calls.append(n)
        return n

    with pytest.raises(InvalidInputError, match="n: expected int, got 'x'"):
        counted("x")  # type: ignore[arg-type]
    assert calls == []


def test_typed_values_travel_to_children_and_back() -> None:
    local = Workflows(default_retry=Retry(max_retries=0))

    @local.task
    def shift(point: Point, by: Color) -> Point:
        return Point(x=point.x + (1 if by is Color.RED else 2), y=point.y)

    @local.task
    async def parent(ctx: TaskContext) -> dict[str, Any]:
        moved = await ctx.run(shift, Point(x=1, y=1), Color.GREEN)
        return {"child": moved, "kind": type(moved).__name__}

    assert asyncio.run(parent()) == {"child": {"x": 3, "y": 1}, "kind": "dict"}


def test_without_pydantic_other_types_go_unchecked() -> None:
    # A task's environment may hold only the standard library (docs/sdk.md).
    code = (
        "import sys\n"
        "sys.modules['pydantic'] = None  # any import of it fails\n"
        "from dataclasses import dataclass\n"
        "from conveyor import Workflows\n"
        "from conveyor._codec import encode_input\n"
        "@dataclass\n"
        "class Box:\n"
        "    label: str\n"
        "app = Workflows()\n"
        "@app.task\n"
        "def f(box: Box, n: int) -> int:\n"
        "    return n\n"
        "print(f.inputs.bind([{'label': 3}, 1]))\n"
        "print([p.schema for p in f.parameters])\n"
        "print(encode_input('f', (Box('x'), 1), {}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "(({'label': 3}, 1), {})",
        "[{}, {'type': 'integer'}]",
        '[{"label": "x"}, 1]',
    ]


def test_a_worker_of_json_types_never_imports_pydantic() -> None:
    code = (
        "import sys\n"
        "from conveyor import Workflows\n"
        "app = Workflows()\n"
        "@app.task\n"
        "def f(a: int, b: list[dict[str, float]] | None = None, c: 'int | None' = None) -> int:\n"
        "    return a\n"
        "f.inputs.bind([1, [{'x': 1.5}], 2])\n"
        "[p.to_wire() for p in f.parameters]\n"
        "print('pydantic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
