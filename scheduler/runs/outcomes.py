"""How an attempt ended, as its worker reported it or its instance's exit showed."""

from __future__ import annotations

from dataclasses import dataclass

from core.domain import AttemptOutcome
from scheduler.runs.values import SELF_REPORTED


@dataclass(frozen=True)
class ReportedOutcome:
    """Frozen: a transition that records it may run again (grouped with others, or as a
    deadlock's victim), and must then write the same."""

    kind: AttemptOutcome
    error: str | None
    stack_trace: str | None
    output: tuple[str | None, str | None] = (None, None)  # (inline JSON, blob key)
    retryable: bool = True
    wait_for_trace: bool = False

    @property
    def advances(self) -> bool:
        """An error whose trace is in the log waits for the instance's exit."""
        return not self.wait_for_trace

    @property
    def frees_slot(self) -> bool:
        """The worker reported it itself and is about to exit."""
        return self.advances and self.kind in SELF_REPORTED
