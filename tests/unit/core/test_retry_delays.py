"""Retry delays as tables of retry number -> seconds, written out (never computed from the code).

Both SDKs' defaults are covered: Conveyor's `Retry()` (1 s, x2) and Render's `render` package
(`Retry(max_retries, wait_duration_ms)` scales by 1.5), each through the registration payload the
server parses, and the server's own default for a task that names no policy.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from render.workflows._callback_models import RetryConfig
from render.workflows._callback_models import Task as RenderTask
from render.workflows._callback_models import TaskOptions as RenderOptions
from render.workflows.task import Retry as RenderRetry

from conveyor import Retry
from core.domain import AttemptOutcome, RetryPolicy
from core.settings import RetrySettings, Settings
from scheduler.registration_payload import InvalidRegistration, parse_registration
from scheduler.runs.retries import retry_delay


def registered_policy(retry: dict[str, Any] | None) -> RetryPolicy | None:
    options = {} if retry is None else {"retry": retry}
    [spec] = parse_registration({"tasks": [{"name": "t", "options": options}]}, Settings())
    return spec.options.retry


@pytest.mark.parametrize(
    ("retry_number", "seconds"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0)]
)
def test_conveyor_sdk_default(retry_number: int, seconds: float) -> None:
    wire = Retry().to_wire()
    assert wire == {"max_retries": 3, "wait_duration_ms": 1000, "factor": 2.0}
    assert Retry().delay_ms(retry_number) == seconds * 1000
    policy = registered_policy(wire)
    assert policy == RetryPolicy(max_retries=3, wait_duration_ms=1000, factor=2.0)
    assert policy.delay_seconds(retry_number) == seconds


@pytest.mark.parametrize(("retry_number", "seconds"), [(1, 1.0), (2, 1.5), (3, 2.25), (4, 3.375)])
def test_render_sdk_default_scaling(retry_number: int, seconds: float) -> None:
    """What `render`'s worker sends in register mode for `Retry(max_retries=3,
    wait_duration_ms=1000)`: its `backoff_scaling` defaults to 1.5, sent as `factor`."""
    retry = RenderRetry(max_retries=3, wait_duration_ms=1000)
    config = RetryConfig(
        max_retries=retry.max_retries,
        wait_duration_ms=retry.wait_duration_ms,
        factor=retry.backoff_scaling,
    )
    body = RenderTask(name="t", options=RenderOptions(retry=config)).to_dict()
    assert body["options"]["retry"] == {"max_retries": 3, "wait_duration_ms": 1000, "factor": 1.5}
    policy = registered_policy(body["options"]["retry"])
    assert policy is not None
    assert policy.delay_seconds(retry_number) == seconds


@pytest.mark.parametrize(("retry_number", "seconds"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)])
def test_server_default_for_a_task_without_a_policy(retry_number: int, seconds: float) -> None:
    assert registered_policy(None) is None
    policy = RetrySettings().policy()
    assert policy == RetryPolicy(max_retries=3, wait_duration_ms=1000, factor=2.0)
    assert policy.delay_seconds(retry_number) == seconds


@pytest.mark.parametrize(
    ("policy", "table"),
    [
        (RetryPolicy(5, 250, 3.0), {0: 0.25, 1: 0.25, 2: 0.75, 3: 2.25, 4: 6.75}),
        (RetryPolicy(2, 1500, 1.0), {1: 1.5, 2: 1.5, 3: 1.5}),
        (RetryPolicy(2, 0, 2.0), {1: 0.0, 2: 0.0}),
        (RetryPolicy(9, 10, 10.0), {1: 0.01, 2: 0.1, 3: 1.0, 4: 10.0}),
    ],
)
def test_delay_tables(policy: RetryPolicy, table: dict[int, float]) -> None:
    assert {n: policy.delay_seconds(n) for n in table} == pytest.approx(table)


@pytest.mark.parametrize(
    ("retry", "table"),
    [
        (Retry(max_retries=4, wait_duration_ms=500, backoff_scaling=3), {1: 500, 2: 1500, 3: 4500}),
        (Retry(max_retries=1, wait_duration_ms=100, backoff_scaling=0), {1: 100, 2: 0}),
        (Retry(max_retries=1, wait_duration_ms=0), {1: 0, 2: 0}),
    ],
)
def test_sdk_delay_ms_tables(retry: Retry, table: dict[int, float]) -> None:
    assert {n: retry.delay_ms(n) for n in table} == table


def run_row(attempt_count: int, lost_count: int = 0, paused_count: int = 0) -> Any:
    return SimpleNamespace(
        attempt_count=attempt_count, lost_count=lost_count, paused_count=paused_count
    )


DEFAULT = RetryPolicy(max_retries=3, wait_duration_ms=1000, factor=2.0)


@pytest.mark.parametrize(
    ("attempt_count", "lost_count", "seconds"),
    [
        (1, 0, 1.0),  # the first attempt failed: first retry
        (2, 0, 2.0),
        (3, 0, 4.0),
        (4, 0, None),  # three retries spent
        (2, 1, 1.0),  # a lost attempt spends no retry
        (4, 1, 4.0),
        (5, 1, None),
        (5, 2, 4.0),
    ],
)
@pytest.mark.parametrize(
    "kind",
    [
        AttemptOutcome.ERROR,
        AttemptOutcome.TIMEOUT,
        AttemptOutcome.EXITED_WITHOUT_RESULT,
        AttemptOutcome.OUT_OF_MEMORY,
    ],
)
def test_retry_delay_after_a_failure(
    kind: AttemptOutcome, attempt_count: int, lost_count: int, seconds: float | None
) -> None:
    delay = retry_delay(run_row(attempt_count, lost_count), kind, DEFAULT, max_lost=5)
    assert delay == seconds


@pytest.mark.parametrize(
    ("attempt_count", "paused_count", "seconds"),
    [
        (2, 1, 1.0),  # a flow's attempt that ended in a durable sleep spends no retry
        (4, 2, 2.0),
        (5, 1, None),
    ],
)
def test_a_flow_s_sleeps_spend_no_retry(
    attempt_count: int, paused_count: int, seconds: float | None
) -> None:
    row = run_row(attempt_count, paused_count=paused_count)
    assert retry_delay(row, AttemptOutcome.ERROR, DEFAULT, max_lost=5) == seconds


@pytest.mark.parametrize("kind", [AttemptOutcome.OK, AttemptOutcome.CANCELED])
def test_no_retry_after_success_or_cancel(kind: AttemptOutcome) -> None:
    assert retry_delay(run_row(1), kind, DEFAULT, max_lost=5) is None


@pytest.mark.parametrize(
    ("lost_count", "max_lost", "seconds"),
    [(0, 5, 0.0), (4, 5, 0.0), (5, 5, None), (0, 1, 0.0), (1, 1, None), (0, 0, None)],
)
def test_lost_attempts_retry_at_once_up_to_max_lost(
    lost_count: int, max_lost: int, seconds: float | None
) -> None:
    row = run_row(attempt_count=9, lost_count=lost_count)
    assert retry_delay(row, AttemptOutcome.LOST, DEFAULT, max_lost=max_lost) == seconds


def test_no_retries_means_no_retry() -> None:
    policy = RetryPolicy(max_retries=0, wait_duration_ms=1000, factor=2.0)
    assert retry_delay(run_row(1), AttemptOutcome.ERROR, policy, max_lost=5) is None


@pytest.mark.parametrize(
    ("retry", "message"),
    [
        ({"max_retries": -1}, "task 't': max_retries must be >= 0"),
        ({"wait_duration_ms": -1}, "task 't': wait_duration_ms must be >= 0"),
        ({"factor": 0.99}, "task 't': retry factor must be >= 1"),
        ({"factor": "x"}, "task 't': retry values must be numbers"),
        ({"max_retries": None}, "task 't': retry values must be numbers"),
        ([], "task 't': retry must be an object"),
    ],
)
def test_registration_refuses_bad_policies(retry: Any, message: str) -> None:
    with pytest.raises(InvalidRegistration) as caught:
        registered_policy(retry)
    assert str(caught.value) == message


def test_registration_fills_missing_retry_values() -> None:
    assert registered_policy({}) == RetryPolicy(max_retries=0, wait_duration_ms=0, factor=1.0)
    assert registered_policy({"factor": 1}) == RetryPolicy(0, 0, 1.0)
    assert registered_policy({"max_retries": 0, "wait_duration_ms": 0}) == RetryPolicy(0, 0, 1.0)
