"""Task options: the retry policy and everything else `@app.task` records."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from conveyor.errors import TaskDefinitionError

PLANS = ("starter", "standard", "pro", "pro_plus", "pro_max", "pro_ultra")
# The server enforces its configured range (30-86400 s by default) at registration, so a
# self-hosted control plane with other limits can serve tasks this SDK defines.
MIN_TIMEOUT_SECONDS = 1
MAX_TIMEOUT_SECONDS = 86_400
# Five or six space-separated fields, or a macro such as "@hourly"; the server parses it fully.
_CRON = re.compile(r"^(@\w+|\S+(\s+\S+){4,5})$")


@dataclass(frozen=True)
class Retry:
    """How often and how soon a failed run is tried again.

    The n-th retry (1-based) waits ``wait_duration_ms * backoff_scaling ** (n - 1)``.

    Attributes:
        max_retries: Attempts after the first one.
        wait_duration_ms: Wait before the first retry, in milliseconds.
        backoff_scaling: Factor applied to the wait for each further retry.
    """

    max_retries: int = 3
    wait_duration_ms: int = 1000
    backoff_scaling: float = 2.0

    def __post_init__(self) -> None:
        """Rejects negative values.

        Raises:
            TaskDefinitionError: A value is negative or of the wrong type.
        """
        for name in ("max_retries", "wait_duration_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise TaskDefinitionError(f"Retry.{name} must be a non-negative int, got {value!r}")
        scaling = self.backoff_scaling
        if isinstance(scaling, bool) or not isinstance(scaling, int | float) or scaling < 0:
            raise TaskDefinitionError(
                f"Retry.backoff_scaling must be a non-negative number, got {scaling!r}"
            )

    def delay_ms(self, retry_number: int) -> float:
        """The wait before a retry.

        Args:
            retry_number: 1 for the first retry, 2 for the second, and so on.

        Returns:
            The wait in milliseconds.
        """
        return self.wait_duration_ms * self.backoff_scaling ** (retry_number - 1)

    def to_wire(self) -> dict[str, Any]:
        """The registration form of the policy (``factor`` is the backoff scaling)."""
        return {
            "max_retries": self.max_retries,
            "wait_duration_ms": self.wait_duration_ms,
            "factor": self.backoff_scaling,
        }


@dataclass(frozen=True)
class TaskOptions:
    """The effective options of one task (its own, else the app's defaults).

    Attributes:
        retry: Retry policy; None leaves it to the server's default.
        timeout_seconds: Limit on one attempt (30-86400); None for the server's default.
        plan: Resource plan; None for the server's default.
        schedule: Cron expression; the server starts runs on it.
        concurrency: Most runs of this task active at once.
    """

    retry: Retry | None = None
    timeout_seconds: int | None = None
    plan: str | None = None
    schedule: str | None = None
    concurrency: int | None = None

    def __post_init__(self) -> None:
        """Validates every option.

        Raises:
            TaskDefinitionError: An option is out of range or of the wrong type.
        """
        if self.retry is not None and not isinstance(self.retry, Retry):
            raise TaskDefinitionError(f"retry must be a Retry, got {self.retry!r}")
        _check_timeout(self.timeout_seconds)
        if self.plan is not None and self.plan not in PLANS:
            raise TaskDefinitionError(f"plan must be one of {', '.join(PLANS)}; got {self.plan!r}")
        if self.schedule is not None and (
            not isinstance(self.schedule, str) or not _CRON.match(self.schedule.strip())
        ):
            raise TaskDefinitionError(f"schedule must be a cron expression, got {self.schedule!r}")
        conc = self.concurrency
        if conc is not None and (isinstance(conc, bool) or not isinstance(conc, int) or conc < 1):
            raise TaskDefinitionError(f"concurrency must be a positive int, got {conc!r}")

    def to_wire(self) -> dict[str, Any]:
        """The ``options`` object of a registration (``{}`` when nothing is set)."""
        wire: dict[str, Any] = {}
        if self.retry is not None:
            wire["retry"] = self.retry.to_wire()
        if self.timeout_seconds is not None:
            wire["timeout_seconds"] = self.timeout_seconds
        if self.plan is not None:
            wire["plan"] = self.plan
        if self.schedule is not None:
            wire["schedule"] = self.schedule.strip()
        if self.concurrency is not None:
            wire["concurrency"] = self.concurrency
        return wire


def _check_timeout(value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TaskDefinitionError(f"timeout_seconds must be an int, got {value!r}")
    if not MIN_TIMEOUT_SECONDS <= value <= MAX_TIMEOUT_SECONDS:
        raise TaskDefinitionError(
            f"timeout_seconds must be within {MIN_TIMEOUT_SECONDS}-{MAX_TIMEOUT_SECONDS}, "
            f"got {value}"
        )


def check_plan(plan: str | None) -> None:
    """Validates an app-level default plan.

    Args:
        plan: The plan name or None.

    Raises:
        TaskDefinitionError: The plan is unknown.
    """
    TaskOptions(plan=plan)


def check_timeout(timeout: int | None) -> None:
    """Validates an app-level default timeout.

    Args:
        timeout: Seconds or None.

    Raises:
        TaskDefinitionError: The timeout is out of range.
    """
    _check_timeout(timeout)
