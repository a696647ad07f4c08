"""Retry policy: whether a run whose attempt ended is tried again, and after how long."""

from __future__ import annotations

from core.domain import AttemptOutcome, RetryPolicy
from scheduler.runs.rows import AnyRow

RETRYABLE = frozenset(
    {
        AttemptOutcome.ERROR,
        AttemptOutcome.TIMEOUT,
        AttemptOutcome.EXITED_WITHOUT_RESULT,
        AttemptOutcome.OUT_OF_MEMORY,
    }
)


def retry_delay(
    run: AnyRow, kind: AttemptOutcome, policy: RetryPolicy, *, max_lost: int
) -> float | None:
    """Seconds before the run's next attempt after an attempt ended as `kind`; None: no more.

    An attempt lost with the control plane does not spend the task's retries (up to
    `max_lost` of them); other failures spend them as the task's policy says.
    """
    if kind is AttemptOutcome.LOST:
        return 0.0 if run.lost_count + 1 <= max_lost else None
    if kind not in RETRYABLE:
        return None
    # a flow's attempt that ended in a durable sleep spent no retry
    retries_used = run.attempt_count - 1 - run.lost_count - run.paused_count
    if retries_used >= policy.max_retries:
        return None
    return policy.delay_seconds(retries_used + 1)
