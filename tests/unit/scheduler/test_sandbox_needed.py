"""Which processes launch untrusted code themselves, and so refuse to start without the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from core.settings import Settings
from scheduler.runtime import EVERYTHING, NOTHING, needs_sandbox

TASKS = frozenset({"tasks"})
BUILDS = frozenset({"builds"})


def _settings(executor: str, builder: str) -> Settings:
    raw: dict[str, Any] = {"executor": {"kind": executor}, "builds": {"builder": builder}}
    return Settings(**raw)


@pytest.mark.parametrize(
    ("executor", "builder", "work", "expected"),
    [
        # the scheduler: tasks of the process executors run here, nowhere else
        ("local", "venv", TASKS, True),
        ("local", "buildkit", TASKS, True),
        ("docker", "venv", TASKS, False),
        ("nomad", "buildkit", TASKS, False),
        # builders (and the server building in-process): venv steps, or local register steps
        ("local", "buildkit", BUILDS, True),
        ("docker", "venv", BUILDS, True),
        ("nomad", "venv", BUILDS, True),
        ("docker", "buildkit", BUILDS, False),
        ("nomad", "buildkit", BUILDS, False),
        # a process that launches nothing (the API with out-of-process builds, CLI commands)
        ("local", "venv", NOTHING, False),
        # `conveyor dev`
        ("local", "venv", EVERYTHING, True),
        ("nomad", "buildkit", EVERYTHING, False),
    ],
)
def test_a_process_needs_the_sandbox_only_where_it_launches_untrusted_code(
    executor: str, builder: str, work: frozenset[Any], expected: bool
) -> None:
    assert needs_sandbox(_settings(executor, builder), work) is expected
