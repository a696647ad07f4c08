"""Metering: an instance's compute seconds and what they cost on its plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.settings import Plan


@dataclass(frozen=True)
class Metered:
    compute_seconds: float
    cost_usd: float


def meter(started_at: datetime | None, ended_at: datetime, plan: Plan) -> Metered:
    """From the instance's start (None: it never started) to its end, at the plan's rate; a clock
    that stepped back gives 0 seconds, never a negative charge."""
    seconds = max((ended_at - (started_at or ended_at)).total_seconds(), 0.0)
    return Metered(seconds, seconds * plan.usd_per_second)
