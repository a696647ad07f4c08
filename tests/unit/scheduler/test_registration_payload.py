"""The `/register-tasks` body: Conveyor's extra keys (schemas, docstrings) are kept and checked;
the SDK's language (from its User-Agent) sets a retry's default factor."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from core.domain import RetryPolicy, TaskParameter
from core.settings import Settings
from scheduler.registration_payload import (
    MAX_DESCRIPTION_CHARS,
    InvalidRegistration,
    parse_registration,
    worker_language,
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


@pytest.mark.parametrize(
    ("user_agent", "language"),
    [
        ("render-sdk-typescript/1.0.0 (node/20.19.2; linux/x64)", "typescript"),
        ("conveyor-sdk-typescript/0.1.0 (node/20.19.2; linux/x64)", "typescript"),
        ("Python-urllib/3.11", "python"),
        ("", "python"),
        ("typescript-lover/1.0", "python"),
    ],
)
def test_the_language_comes_from_the_user_agent(user_agent: str, language: str) -> None:
    assert worker_language(user_agent) == language


def _retry_of(retry: Mapping[str, object], language: str) -> RetryPolicy | None:
    body = {"tasks": [{"name": "t", "options": {"retry": retry}}]}
    [spec] = parse_registration(body, Settings(), language=language)
    assert spec.language == language
    return spec.options.retry


def test_a_typescript_retry_without_backoff_scaling_backs_off_by_1_5() -> None:
    # Render's TypeScript SDK leaves `factor` out when `backoffScaling` is not given
    policy = _retry_of({"max_retries": 3, "wait_duration_ms": 1000}, "typescript")
    assert policy == RetryPolicy(3, 1000, 1.5)
    assert [policy.delay_seconds(n) for n in (1, 2, 3)] == [1.0, 1.5, 2.25]


def test_a_retry_without_a_factor_from_python_keeps_1() -> None:
    assert _retry_of({"max_retries": 2, "wait_duration_ms": 500}, "python") == RetryPolicy(
        2, 500, 1.0
    )


def test_a_given_factor_is_kept_whatever_the_language() -> None:
    retry = {"max_retries": 1, "wait_duration_ms": 10, "factor": 3}
    assert _retry_of(retry, "typescript") == RetryPolicy(1, 10, 3.0)


def test_a_flow_is_a_task_of_kind_flow_and_other_kinds_are_refused() -> None:
    specs = parse_registration(
        {"tasks": [{"name": "f", "kind": "flow"}, {"name": "t"}, {"name": "u", "kind": "task"}]},
        Settings(),
    )
    assert [(s.name, s.kind) for s in specs] == [("f", "flow"), ("t", "task"), ("u", "task")]
    with pytest.raises(InvalidRegistration, match="kind must be 'task' or 'flow'"):
        parse_registration({"tasks": [{"name": "f", "kind": "workflow"}]}, Settings())
