"""The `/register-tasks` body: Conveyor's extra keys (schemas, docstrings) are kept and checked."""

from __future__ import annotations

import pytest

from core.domain import TaskParameter
from core.settings import Settings
from scheduler.registration_payload import (
    MAX_DESCRIPTION_CHARS,
    InvalidRegistration,
    parse_registration,
)


def test_schemas_and_descriptions_are_kept() -> None:
    [spec] = parse_registration(
        {
            "tasks": [
                {
                    "name": "square",
                    "options": {},
                    "parameters": [
                        {
                            "name": "a",
                            "type": "int",
                            "has_default": False,
                            "schema": {"type": "integer"},
                        }
                    ],
                    "description": "  The square of a.\n",
                }
            ]
        },
        Settings(),
    )
    assert spec.parameters == (TaskParameter("a", "int", False, None, {"type": "integer"}),)
    assert spec.description == "The square of a."


def test_render_registrations_have_neither() -> None:
    [spec] = parse_registration(
        {"tasks": [{"name": "t", "parameters": [{"name": "a", "has_default": False}]}]}, Settings()
    )
    assert spec.parameters[0].schema is None and spec.description is None


def test_long_descriptions_are_cut() -> None:
    body = {"tasks": [{"name": "t", "description": "x" * (MAX_DESCRIPTION_CHARS + 5)}]}
    [spec] = parse_registration(body, Settings())
    assert spec.description is not None and len(spec.description) == MAX_DESCRIPTION_CHARS


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"name": "t", "parameters": [{"name": "a", "schema": "int"}]}, "schema of parameter 'a'"),
        ({"name": "t", "description": 3}, "description must be a string"),
    ],
)
def test_malformed_extras_are_refused(task: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRegistration, match=message):
        parse_registration({"tasks": [task]}, Settings())


def test_a_flow_is_a_task_of_kind_flow_and_other_kinds_are_refused() -> None:
    specs = parse_registration(
        {"tasks": [{"name": "f", "kind": "flow"}, {"name": "t"}, {"name": "u", "kind": "task"}]},
        Settings(),
    )
    assert [(s.name, s.kind) for s in specs] == [("f", "flow"), ("t", "task"), ("u", "task")]
    with pytest.raises(InvalidRegistration, match="kind must be 'task' or 'flow'"):
        parse_registration({"tasks": [{"name": "f", "kind": "workflow"}]}, Settings())
