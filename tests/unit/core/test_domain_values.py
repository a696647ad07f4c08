"""The derived values of the domain types: terminal statuses, attempt statuses, retries, slugs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core.domain import (
    AttemptInfo,
    AttemptOutcome,
    AttemptState,
    RunInfo,
    RunStatus,
    TaskInfo,
    TaskOptions,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        (RunStatus.PENDING, False),
        (RunStatus.RUNNING, False),
        (RunStatus.SUCCEEDED, True),
        (RunStatus.FAILED, True),
        (RunStatus.CANCELED, True),
    ],
)
def test_terminal_statuses(status: RunStatus, terminal: bool) -> None:
    assert status.terminal is terminal


def attempt(outcome: AttemptOutcome | None, started: bool = True) -> AttemptInfo:
    return AttemptInfo(
        number=0,
        state=AttemptState.ENDED if outcome else AttemptState.RUNNING,
        outcome=outcome,
        enqueued_at=T0,
        started_at=T0 if started else None,
        ended_at=None,
        waiting=False,
        error=None,
        stack_trace=None,
        compute_seconds=None,
        cost_usd=None,
        exit_code=None,
    )


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (None, RunStatus.RUNNING),
        (AttemptOutcome.OK, RunStatus.SUCCEEDED),
        (AttemptOutcome.CANCELED, RunStatus.CANCELED),
        (AttemptOutcome.ERROR, RunStatus.FAILED),
        (AttemptOutcome.TIMEOUT, RunStatus.FAILED),
        (AttemptOutcome.LOST, RunStatus.FAILED),
        (AttemptOutcome.EXITED_WITHOUT_RESULT, RunStatus.FAILED),
        (AttemptOutcome.OUT_OF_MEMORY, RunStatus.FAILED),
    ],
)
def test_attempt_status(outcome: AttemptOutcome | None, status: RunStatus) -> None:
    assert attempt(outcome).status is status


def run(*attempts: AttemptInfo) -> RunInfo:
    fields: dict[str, Any] = dict.fromkeys(RunInfo.__dataclass_fields__)
    fields.update(workflow_slug="etl", task_name="load", attempts=attempts)
    return RunInfo(**fields)


@pytest.mark.parametrize(
    ("attempts", "retries"),
    [
        ((), 0),
        ((attempt(None, started=False),), 0),
        ((attempt(AttemptOutcome.ERROR),), 0),
        ((attempt(AttemptOutcome.ERROR), attempt(None)), 1),
        ((attempt(AttemptOutcome.ERROR), attempt(None, started=False)), 0),
        ((attempt(AttemptOutcome.ERROR),) * 3 + (attempt(AttemptOutcome.OK),), 3),
    ],
)
def test_retries_count_started_attempts_after_the_first(
    attempts: tuple[AttemptInfo, ...], retries: int
) -> None:
    assert run(*attempts).retries == retries


def test_slugs() -> None:
    assert run().task_slug == "etl/load"
    task = TaskInfo(
        id="tsk-1",
        name="load",
        workflow_id="wf-1",
        workflow_slug="etl",
        version_id="wfv-1",
        created_at=T0,
        options=TaskOptions(),
        parameters=(),
    )
    assert task.slug == "etl/load"
