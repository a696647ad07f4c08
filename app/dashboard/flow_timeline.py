"""A flow run's steps on one time axis, drawn as the waterfall draws a tree (its segments, its
axis, its styles): a row per step in `seq` order, in milliseconds from the run's creation.

- an inline step: each failed try (red), the waits between them, then its successful or current
  try; a detached step the same, its try being its task run;
- a sleep: from when it was reached to its wake time (in the future while the flow is paused),
  then, once woken, the wait for the attempt that resumed it (a run cancelled asleep: to then).

A step still running when its attempt ended (the run is pending again, or over) is drawn up to
that end, as cut short: the next attempt runs it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.dashboard.present import seconds_text, when
from app.dashboard.waterfall import Axis, Segment
from core.domain import RunInfo, RunStatus
from scheduler.flows.tables import StepInfo, StepStatus, StepType

TRY = "try"


@dataclass(frozen=True)
class StepRow:
    step: StepInfo
    segments: tuple[Segment, ...]

    @property
    def open(self) -> bool:
        return any(s.end_ms is None for s in self.segments)

    @property
    def sleeping(self) -> bool:
        """A sleep whose wake time has not come."""
        return self.step.type is StepType.SLEEP and self.step.status is StepStatus.RUNNING

    @property
    def status(self) -> str:
        """What the step's badge says: a sleep sleeps, then wakes."""
        if self.step.type is StepType.SLEEP:
            return "sleeping" if self.sleeping else "woke"
        return self.step.status.value

    @property
    def tries(self) -> int:
        return len(self.step.attempts)

    @property
    def description(self) -> str:
        """The bar as text (its SVG title): each segment, and the wake time of a sleep."""
        text = "; ".join(s.label for s in self.segments) or "not started"
        if self.step.wake_at is not None:
            text += f"; {'wakes' if self.sleeping else 'woke'} at {when(self.step.wake_at)}"
        return text

    @property
    def duration(self) -> str:
        """How long the step took (a sleep: how long it sleeps); `—` while it runs."""
        step = self.step
        if step.type is StepType.SLEEP and step.wake_at is not None:
            slept = _aware(step.wake_at) - _aware(step.started_at)
            return seconds_text(max(slept.total_seconds(), 0.0))
        ends = [s.end_ms for s in self.segments]
        if not ends or None in ends:
            return "—"
        last = max(e for e in ends if e is not None)
        return seconds_text((last - self.segments[0].start_ms) / 1000)


@dataclass(frozen=True)
class StepBoard(Axis):
    """The steps' axis starts when the run was created."""

    rows: list[StepRow]

    @property
    def open(self) -> bool:
        return any(row.open for row in self.rows)

    @property
    def kinds(self) -> set[str]:
        """The kinds of segment drawn (what the legend explains)."""
        return {s.kind for row in self.rows for s in row.segments}


def step_board(run: RunInfo, steps: list[StepInfo], now: datetime | None = None) -> StepBoard:
    """The run's steps in `seq` order on an axis long enough for the last end or wake time
    (and now, while a step runs)."""
    t0 = _aware(run.created_at)
    now_ms = _ms(now or datetime.now(UTC), t0)
    rows = [
        StepRow(step, tuple(step_segments(step, run, t0)))
        for step in sorted(steps, key=lambda s: s.seq)
    ]
    ends = [s.end_ms for row in rows for s in row.segments if s.end_ms is not None]
    span = max(max(ends, default=0), now_ms if any(r.open for r in rows) else 0, 1)
    return StepBoard(t0, now_ms, span, rows)


def step_segments(step: StepInfo, run: RunInfo, t0: datetime) -> list[Segment]:
    if step.type is StepType.SLEEP:
        return _sleep(step, run, t0)
    out, cursor = _tries(step, t0)
    if step.status is StepStatus.FAILED:
        if not out:  # failed without a recorded try (its task run failed)
            end = _aware(step.completed_at) if step.completed_at else _aware(step.started_at)
            first = 1 if step.type is StepType.INLINE else None
            out.append(_seg("failed", _aware(step.started_at), end, t0, first))
        return out
    # this try's number (a detached step's try is its task run, which counts its own attempts)
    number = len(step.attempts) + 1 if step.type is StepType.INLINE else None
    begin = cursor or _aware(step.started_at)
    attempt = step.flow_attempt if step.status is StepStatus.SUCCEEDED else _current(run)
    # an inline try runs in the flow's process: one that ran in a later attempt began there
    resumed = _attempt_start(run, attempt) if number is not None else None
    if resumed is not None and resumed > begin:
        if cursor is not None:
            out.append(_seg("backoff", begin, resumed, t0, None))
        begin = resumed
    if step.status is StepStatus.SUCCEEDED:
        end = _aware(step.completed_at) if step.completed_at else begin
        out.append(_seg("ok", begin, max(end, begin), t0, number))
        return out
    # a detached step's task run goes on while the flow sleeps; it ends with the flow's run
    detached = step.type is StepType.DETACHED and not run.status.terminal
    cut = None if detached else _cut(run)
    if cut is None:
        out.append(_seg("running", begin, None, t0, number))
    else:
        out.append(_seg("canceled", begin, max(cut, begin), t0, number))
    return out


def _tries(step: StepInfo, t0: datetime) -> tuple[list[Segment], datetime | None]:
    """The failed tries, with the retry waits between them; and when the last one ended."""
    out: list[Segment] = []
    cursor: datetime | None = None
    for index, tried in enumerate(step.attempts, start=1):
        started, ended = _time(tried, "startedAt"), _time(tried, "completedAt")
        if started is None or ended is None:
            continue
        if cursor is not None and started > cursor:
            out.append(_seg("backoff", cursor, started, t0, None))
        number = int(tried.get("attempt", index))
        out.append(_seg("failed", started, max(ended, started), t0, number))
        cursor = max(ended, started)
    return out, cursor


def _sleep(step: StepInfo, run: RunInfo, t0: datetime) -> list[Segment]:
    started = _aware(step.started_at)
    wake = _aware(step.wake_at) if step.wake_at else started
    cut = _cut(run) if step.status is StepStatus.RUNNING else None
    if cut is not None and run.status.terminal:  # cancelled (or failed) while asleep
        return [_seg("sleep", started, max(min(wake, cut), started), t0, None)]
    out = [_seg("sleep", started, max(wake, started), t0, None)]
    if step.status is StepStatus.SUCCEEDED and step.completed_at is not None:
        resumed = _aware(step.completed_at)
        if resumed > wake:  # woken, waiting for the attempt that resumed it
            out.append(_seg("queued", wake, resumed, t0, None))
    return out


def _current(run: RunInfo) -> int | None:
    return run.attempts[-1].number if run.attempts else None


def _attempt_start(run: RunInfo, number: int | None) -> datetime | None:
    for attempt in run.attempts:
        if attempt.number == number and attempt.started_at is not None:
            return _aware(attempt.started_at)
    return None


def _cut(run: RunInfo) -> datetime | None:
    """When a step still marked running stopped: its attempt's end (None while it runs)."""
    if run.status is RunStatus.RUNNING:
        return None
    last = run.attempts[-1] if run.attempts else None
    if last is not None and last.ended_at is not None:
        ended = _aware(last.ended_at)
        return max(ended, _aware(run.completed_at)) if run.completed_at else ended
    return _aware(run.completed_at) if run.completed_at else None


def _seg(kind: str, start: datetime, end: datetime | None, t0: datetime, n: int | None) -> Segment:
    return Segment(kind, _ms(start, t0), None if end is None else _ms(end, t0), n, TRY)


def _time(tried: dict[str, Any], key: str) -> datetime | None:
    raw = tried.get(key)
    if not isinstance(raw, str):
        return None
    try:
        return _aware(datetime.fromisoformat(raw))
    except ValueError:
        return None


def _ms(at: datetime, t0: datetime) -> int:
    return int((_aware(at) - t0).total_seconds() * 1000)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
