"""A run tree on one time axis: a row per run, each a sequence of segments (queued, running,
waiting on children, retry wait, a flow's sleep, and how each attempt ended), in milliseconds
from the root's creation. Drawn server-side as SVG geometry; the page's script only stretches
open segments. A flow's steps are drawn on an axis of the same kind (`flow_timeline`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.dashboard.flow_runs import paused_until
from app.dashboard.present import seconds_text
from app.dashboard.tree import build_tree
from core.domain import AttemptInfo, AttemptOutcome, RunInfo, RunStatus
from scheduler.runs.timeline import TreeHistory

MIN_WIDTH = 0.002  # of the axis: a closed segment is never drawn thinner than this
MAX_DEPTH_SHOWN = 10  # deeper runs are indented like this one (the row says its depth)

Waits = dict[int, list[tuple[str, datetime]]]


KINDS = {
    "queued": "queued",
    "running": "running",
    "waiting": "waiting on children",
    "backoff": "retry wait",
    "ok": "ran, succeeded",
    "failed": "ran, failed",
    "canceled": "ran, canceled",
    "paused": "ran, then paused to sleep",  # a flow's attempt that reached a durable sleep
    "sleep": "sleeping",  # a flow asleep until its wake time
}


@dataclass(frozen=True)
class Segment:
    kind: str  # one of KINDS
    start_ms: int
    end_ms: int | None  # None: still open, it grows with the clock
    attempt: int | None
    noun: str = "attempt"  # what `attempt` counts (a flow step's tries are "try #1", …)

    @property
    def label(self) -> str:
        what = KINDS[self.kind]
        prefix = f"{self.noun} #{self.attempt}: " if self.attempt is not None else ""
        if self.end_ms is None:
            return f"{prefix}{what} (ongoing)"
        return f"{prefix}{what} {seconds_text((self.end_ms - self.start_ms) / 1000)}"


@dataclass(frozen=True)
class Row:
    run: RunInfo
    depth: int
    segments: tuple[Segment, ...]

    @property
    def compute_seconds(self) -> float:
        return sum(a.compute_seconds or 0.0 for a in self.run.attempts)

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd or 0.0 for a in self.run.attempts)

    @property
    def indent(self) -> int:
        return min(self.depth, MAX_DEPTH_SHOWN)

    @property
    def open(self) -> bool:
        return any(s.end_ms is None for s in self.segments)

    @property
    def description(self) -> str:
        return "; ".join(s.label for s in self.segments) or "not started"


@dataclass(frozen=True)
class Axis:
    """Milliseconds from `t0`, `span_ms` long; bars are SVG rects in these units."""

    t0: datetime
    now_ms: int
    span_ms: int  # the axis' length

    @property
    def t0_ms(self) -> int:
        return int(self.t0.timestamp() * 1000)

    @property
    def ticks(self) -> list[str]:
        """Labels at 0, ¼, ½, ¾ and the whole axis."""
        return [seconds_text(self.span_ms * k / 4000) for k in range(5)]

    def width(self, segment: Segment) -> int:
        end = self.now_ms if segment.end_ms is None else segment.end_ms
        least = 0 if segment.end_ms is None else int(self.span_ms * MIN_WIDTH)
        return max(end - segment.start_ms, least, 1 if segment.end_ms is not None else 0)


@dataclass(frozen=True)
class Waterfall(Axis):
    """The tree's axis starts when the root was created."""

    rows: list[Row]
    total: int  # runs in the tree (rows may show fewer)

    @property
    def cut(self) -> bool:
        return self.total > len(self.rows)

    @property
    def open(self) -> bool:
        return any(row.open for row in self.rows)

    @property
    def ended_at(self) -> datetime | None:
        """When the last run of the tree ended; None while any is unfinished."""
        if self.open:
            return None
        return self.t0 + timedelta(milliseconds=self.span_ms)

    @property
    def counts(self) -> list[tuple[str, int]]:
        """Runs by status, a flow run asleep counted as paused rather than pending."""
        counted = Counter(
            "paused" if paused_until(row.run) else row.run.status.value for row in self.rows
        )
        order = [s.value for s in RunStatus] + ["paused"]
        return [(status, counted[status]) for status in order if counted[status]]

    @property
    def compute_seconds(self) -> float:
        return sum(row.compute_seconds for row in self.rows)

    @property
    def cost_usd(self) -> float:
        return sum(row.cost_usd for row in self.rows)


def waterfall(history: TreeHistory, now: datetime | None = None) -> Waterfall | None:
    """The tree's rows in tree order (children in creation order); None without its root."""
    now = now or datetime.now(UTC)
    tree = build_tree(history.runs, history.root_id)
    if tree is None:
        return None
    t0 = _aware(tree.run.created_at)
    now_ms = _ms(now, t0)
    rows: list[Row] = []
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        waits = history.waits.get(node.run.id, {})
        rows.append(Row(node.run, depth, tuple(segments(node.run, waits, t0))))
        stack.extend((child, depth + 1) for child in reversed(node.children))
    ends = (s.end_ms for row in rows for s in row.segments if s.end_ms is not None)
    span = max(max(ends, default=0), now_ms if any(r.open for r in rows) else 0, 1)
    return Waterfall(t0, now_ms, span, rows, history.total)


def rows_of(board: Waterfall, run_ids: Iterable[str]) -> list[Row]:
    """The rows of `run_ids` and of their parents (a parent's waits change with its children)."""
    wanted = set(run_ids)
    parents = {row.run.parent_id for row in board.rows if row.run.id in wanted}
    wanted |= {parent for parent in parents if parent}
    return [row for row in board.rows if row.run.id in wanted]


def segments(run: RunInfo, waits: Waits, t0: datetime) -> list[Segment]:
    """How the run spent its time, attempt by attempt, up to now (open segments have no end)."""
    out: list[Segment] = []
    previous_end: datetime | None = None
    gap = "backoff"  # what the time between two attempts was: a retry wait or a flow's sleep
    for attempt in run.attempts:
        queued_from = _aware(attempt.enqueued_at)
        if previous_end is not None:
            if queued_from > previous_end:
                out.append(_segment(gap, previous_end, queued_from, t0, attempt.number))
            queued_from = max(queued_from, previous_end)
        if attempt.started_at is not None:
            started = _aware(attempt.started_at)
            if started > queued_from:
                out.append(_segment("queued", queued_from, started, t0, attempt.number))
            out.extend(_ran(attempt, waits.get(attempt.number, []), t0))
        previous_end = _aware(attempt.ended_at) if attempt.ended_at else None
        gap = "sleep" if attempt.outcome is AttemptOutcome.PAUSED else "backoff"
    out.extend(_tail(run, previous_end, t0))
    return out


def _ran(attempt: AttemptInfo, waits: list[tuple[str, datetime]], t0: datetime) -> list[Segment]:
    """From start to end, split where it waited on children."""
    assert attempt.started_at is not None
    kind = _outcome_kind(attempt.outcome)
    end = _aware(attempt.ended_at) if attempt.ended_at else None
    out: list[Segment] = []
    cursor = _aware(attempt.started_at)
    waiting_since: datetime | None = None
    for what, at in waits:
        at = _aware(at)
        if what == "waiting" and waiting_since is None:
            out.append(_segment(kind, cursor, at, t0, attempt.number))
            waiting_since = at
        elif what == "resumed" and waiting_since is not None:
            out.append(_segment("waiting", waiting_since, at, t0, attempt.number))
            cursor, waiting_since = at, None
    if waiting_since is not None:
        out.append(_segment("waiting", waiting_since, end, t0, attempt.number))
    else:
        out.append(_segment(kind, cursor, end, t0, attempt.number))
    kept = [s for s in out if s.end_ms is None or s.end_ms > s.start_ms]
    return kept or out[-1:]


def _tail(run: RunInfo, previous_end: datetime | None, t0: datetime) -> list[Segment]:
    """A pending run's wait after its last attempt (or before its first)."""
    last = run.attempts[-1] if run.attempts else None
    if run.status is RunStatus.PENDING:
        end = None
    elif run.status is RunStatus.CANCELED and (last is None or last.ended_at is not None):
        if last is not None and last.outcome is AttemptOutcome.CANCELED:
            return []
        end = _aware(run.completed_at) if run.completed_at else None
    else:
        return []
    if last is None:
        return [_segment("queued", _aware(run.created_at), end, t0, None)]
    start = previous_end or _aware(last.enqueued_at)
    out = []
    not_before = _aware(run.not_before) if run.not_before else None
    if not_before is not None and not_before > start:
        backoff_end = not_before if end is None else min(not_before, end)
        wait = "sleep" if last.outcome is AttemptOutcome.PAUSED else "backoff"
        out.append(_segment(wait, start, backoff_end, t0, last.number + 1))
        start = backoff_end
    if end is None or end > start:
        out.append(_segment("queued", start, end, t0, last.number + 1))
    return out


def _outcome_kind(outcome: AttemptOutcome | None) -> str:
    if outcome is None:
        return "running"
    if outcome is AttemptOutcome.OK:
        return "ok"
    if outcome is AttemptOutcome.CANCELED:
        return "canceled"
    if outcome is AttemptOutcome.PAUSED:
        return "paused"
    return "failed"


def _segment(
    kind: str, start: datetime, end: datetime | None, t0: datetime, attempt: int | None
) -> Segment:
    return Segment(kind, _ms(start, t0), None if end is None else _ms(end, t0), attempt)


def _ms(at: datetime, t0: datetime) -> int:
    return int((_aware(at) - t0).total_seconds() * 1000)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
