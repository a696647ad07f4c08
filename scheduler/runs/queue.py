"""The queue as people ask about it: what holds the slots, what waits, in which order, and why.

Pending runs are listed in admission order (`admission.py`: descendants of running trees first,
then by tree, oldest first), each with the reason it has not started: the workspace's slots are
all taken (or go to runs ahead of it), its task is at its own `concurrency`, or its retry's
backoff has not passed. A started attempt whose executor has no room yet (a full Nomad
cluster) holds its slot and says so. Read without locks: it is a picture, not a decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from core.domain import AttemptInfo, RunInfo, RunStatus, TaskOptions
from scheduler.runs.admission import task_room
from scheduler.runs.rows import LIVE_STATES, attempts, options_from_json, runs, tasks, workspaces
from scheduler.runs.summaries import runs_by_ids, summaries, summary_query


class WaitReason(StrEnum):
    """Why a run has not started (or a started attempt does not run yet)."""

    NEXT = "next"  # nothing holds it back: the next admission pass starts it
    WORKSPACE_LIMIT = "workspace_limit"  # every slot is taken, or promised to runs ahead of it
    TASK_LIMIT = "task_limit"  # its task runs as many attempts as its `concurrency` allows
    BACKOFF = "backoff"  # its retry waits for the backoff to pass (`not_before`)
    CAPACITY = "capacity"  # started, but its executor has no room for it yet


@dataclass(frozen=True)
class QueuedRun:
    run: RunInfo
    reason: WaitReason
    since: datetime  # since when it may start (for a backoff: when it may start again)
    busy: int = 0  # TASK_LIMIT: attempts of its task running
    concurrency: int = 0  # TASK_LIMIT: how many its task allows


@dataclass(frozen=True)
class Slot:
    """A live attempt: holding a slot, or waiting on its children (then holding none)."""

    run: RunInfo
    attempt: AttemptInfo

    @property
    def reason(self) -> WaitReason | None:
        return WaitReason.CAPACITY if self.attempt.waiting_reason else None


@dataclass(frozen=True)
class QueueView:
    limit: int
    active: int  # attempts holding a slot
    waiting_on_children: int  # live attempts that hold none while they wait
    pending: int  # runs that may start (backoff passed)
    backing_off: int  # runs waiting for a retry's backoff
    oldest_since: datetime | None  # the longest a run has waited for a slot, from when
    oldest_run_id: str | None
    queued: list[QueuedRun]  # the first pending runs, in admission order
    backoff: list[QueuedRun]  # the first runs in backoff, soonest first
    slots: list[Slot]  # live attempts, oldest first

    @property
    def free(self) -> int:
        return max(self.limit - self.active, 0)


def queue_view(
    conn: Connection, workspace_id: str, now: datetime, default_limit: int, shown: int
) -> QueueView:
    """The workspace's queue at `now`; at most `shown` runs of each list."""
    limit = conn.scalar(select(workspaces.c.max_concurrency).where(workspaces.c.id == workspace_id))
    limit = int(limit or default_limit)
    slots = _slots(conn, workspace_id, shown)
    active = sum(1 for slot in slots if not slot.attempt.waiting)
    waiting = len(slots) - active
    if len(slots) == shown:  # more than shown: count them all
        active, waiting = _slot_counts(conn, workspace_id)
    # children of running trees first (false sorts first), then by tree, oldest first
    in_order = (runs.c.parent_id.is_(None), runs.c.root_id, runs.c.id)
    ready = _runs(conn, workspace_id, _admissible(now), in_order, shown)
    queued = _reasons(conn, workspace_id, ready, limit - active)
    soonest = (runs.c.not_before, runs.c.id)
    backoff = [
        QueuedRun(run, WaitReason.BACKOFF, run.not_before or run.created_at)
        for run in _runs(conn, workspace_id, _backing_off(now), soonest, shown)
    ]
    counts = _counts(conn, workspace_id, now)
    oldest = conn.execute(
        select(runs.c.id, func.coalesce(runs.c.not_before, runs.c.created_at).label("since"))
        .where(runs.c.workspace_id == workspace_id, _admissible(now))
        .order_by(func.coalesce(runs.c.not_before, runs.c.created_at), runs.c.id)
        .limit(1)
    ).first()
    return QueueView(
        limit=limit,
        active=active,
        waiting_on_children=waiting,
        pending=counts[0],
        backing_off=counts[1],
        oldest_since=oldest.since if oldest is not None else None,
        oldest_run_id=oldest.id if oldest is not None else None,
        queued=queued,
        backoff=backoff,
        slots=slots,
    )


def _admissible(now: datetime) -> ColumnElement[bool]:
    return (runs.c.status == RunStatus.PENDING.value) & (
        runs.c.not_before.is_(None) | (runs.c.not_before <= now)
    )


def _backing_off(now: datetime) -> ColumnElement[bool]:
    return (runs.c.status == RunStatus.PENDING.value) & (runs.c.not_before > now)


def _runs(
    conn: Connection,
    workspace_id: str,
    condition: ColumnElement[bool],
    order: tuple[ColumnElement[Any], ...],
    shown: int,
) -> list[RunInfo]:
    query = summary_query(workspace_id).where(condition).order_by(*order).limit(shown)
    return summaries(conn, conn.execute(query).all())


def _counts(conn: Connection, workspace_id: str, now: datetime) -> tuple[int, int]:
    mine = runs.c.workspace_id == workspace_id
    ready = conn.scalar(select(func.count()).where(mine, _admissible(now)))
    later = conn.scalar(select(func.count()).where(mine, _backing_off(now)))
    return int(ready or 0), int(later or 0)


def _slots(conn: Connection, workspace_id: str, shown: int) -> list[Slot]:
    live = (
        select(attempts.c.run_id, attempts.c.number)
        .where(attempts.c.workspace_id == workspace_id, attempts.c.state.in_(LIVE_STATES))
        .order_by(attempts.c.started_at, attempts.c.id)
        .limit(shown)
    )
    numbers = dict(conn.execute(live).all())
    by_id = {run.id: run for run in runs_by_ids(conn, workspace_id, list(numbers))}
    found = []
    for run_id, number in numbers.items():
        run = by_id.get(run_id)
        attempt = next((a for a in run.attempts if a.number == number), None) if run else None
        if run is not None and attempt is not None:
            found.append(Slot(run, attempt))
    return found


def _slot_counts(conn: Connection, workspace_id: str) -> tuple[int, int]:
    live = (attempts.c.workspace_id == workspace_id) & attempts.c.state.in_(LIVE_STATES)
    active = conn.scalar(select(func.count()).where(live, attempts.c.waiting.is_(False)))
    waiting = conn.scalar(select(func.count()).where(live, attempts.c.waiting.is_(True)))
    return int(active or 0), int(waiting or 0)


def _reasons(
    conn: Connection, workspace_id: str, pending: list[RunInfo], free: int
) -> list[QueuedRun]:
    """Walks the pending runs as an admission pass would (`admission.choose`)."""
    options = _options(conn, {run.task_id for run in pending})
    room = task_room(conn, workspace_id, options)
    limits = {task_id: o.concurrency or 0 for task_id, o in options.items()}
    left = dict(room)
    queued = []
    for run in pending:
        since = run.not_before or run.created_at
        if run.task_id in left and left[run.task_id] <= 0:
            concurrency = limits[run.task_id]
            busy = concurrency - room[run.task_id]
            queued.append(QueuedRun(run, WaitReason.TASK_LIMIT, since, busy, concurrency))
        elif free > 0:
            free -= 1
            if run.task_id in left:
                left[run.task_id] -= 1
            queued.append(QueuedRun(run, WaitReason.NEXT, since))
        else:
            queued.append(QueuedRun(run, WaitReason.WORKSPACE_LIMIT, since))
    return queued


def _options(conn: Connection, task_ids: set[str]) -> dict[str, TaskOptions]:
    if not task_ids:
        return {}
    rows = conn.execute(select(tasks.c.id, tasks.c.options).where(tasks.c.id.in_(task_ids)))
    return {task_id: options_from_json(text) for task_id, text in rows}
