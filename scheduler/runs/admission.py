"""Admission policy: who gets the workspace's free slots, under its limit and each task's own.

Active = attempts starting or running and not waiting on children. Free slots go first to
waiting parents whose awaited children have all ended (they resume: a resuming parent needs a
slot, or the limit would be exceeded the moment it continues), then to pending runs —
descendants of running roots before new roots, then by root creation time. A task with a
`concurrency` option also gets no more than that many active attempts; resumes are not held back
by it, so a tree can never wait on itself.

These are the reads of an admission pass, made inside the caller's write transaction; its
arithmetic is `admission_rules.py`, and the writes (starting attempts, granting resumes) are
transitions (`transitions.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BindParameter, Connection, String, bindparam, exists, func, select

from core.domain import RunStatus, TaskOptions
from scheduler.runs import admission_rules
from scheduler.runs.admission_rules import Slots
from scheduler.runs.rows import (
    LIVE_STATES,
    NON_TERMINAL,
    AnyRow,
    attempts,
    options_from_json,
    runs,
    tasks,
    workspaces,
)

# how many pending runs beyond the free slots are looked at, so that runs of tasks at their own
# limit do not hide admissible ones behind them
LOOKAHEAD = 200


@dataclass(frozen=True)
class Admitted:
    """An attempt the scheduler must now start, with what its instance will ask for."""

    attempt_id: str
    run_id: str
    attempt: int
    task_name: str
    version_id: str
    plan: str
    timeout_seconds: int
    log_key: str
    workspace_id: str = ""
    root_id: str = ""
    parent_id: str | None = None
    input_json: str | None = None  # inline input, or
    input_key: str | None = None  # the blob holding it
    started_at: datetime | None = None


# Statements are built once: building a statement costs more than running it on SQLite.
_WORKSPACE: BindParameter[str] = bindparam("workspace_id", type_=String)
_LIVE = (attempts.c.workspace_id == _WORKSPACE) & attempts.c.state.in_(LIVE_STATES)
# Row locks on PostgreSQL are FOR NO KEY UPDATE (key_share=True), never FOR UPDATE: inserting a
# run or an attempt takes FOR KEY SHARE on the rows its foreign keys name, which FOR UPDATE
# conflicts with. Two creates would each hold that share on the workspace and wait to upgrade it:
# a deadlock on every burst of concurrent creates. No statement here changes a key.
_LOCK_WORKSPACE = (
    select(workspaces.c.max_concurrency)
    .where(workspaces.c.id == _WORKSPACE)
    .with_for_update(of=workspaces, key_share=True)
)
_ACTIVE = select(
    select(func.count()).where(_LIVE, attempts.c.waiting.is_(False)).scalar_subquery(),
    select(func.count()).where(_LIVE, attempts.c.waiting.is_(True)).scalar_subquery(),
)
_HELD_BY = select(func.count()).where(
    _LIVE,
    attempts.c.waiting.is_(False),
    attempts.c.scheduler_id == bindparam("scheduler_id"),
)
_child = runs.alias("child")
_RESUMABLE = (
    select(attempts.c.id, runs.c.id.label("run_id"), runs.c.root_id, runs.c.parent_id)
    .join(runs, runs.c.id == attempts.c.run_id)
    .where(
        attempts.c.workspace_id == _WORKSPACE,
        attempts.c.waiting.is_(True),
        attempts.c.state.in_(LIVE_STATES),
        attempts.c.outcome.is_(None),
        ~exists().where(
            _child.c.parent_id == attempts.c.run_id,
            _child.c.parent_attempt == attempts.c.number,
            _child.c.awaited.is_(True),
            _child.c.status.in_(NON_TERMINAL),
        ),
    )
    .order_by(runs.c.root_id, runs.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True, of=attempts, key_share=True)
)
_ADMISSIBLE = (
    select(runs)
    .where(
        runs.c.workspace_id == _WORKSPACE,
        runs.c.status == RunStatus.PENDING.value,
        (runs.c.not_before.is_(None)) | (runs.c.not_before <= bindparam("now")),
    )
    # children of running trees first (false sorts first), then by tree, oldest first: the
    # order of the index ix_task_runs_admission, so a pass reads the next few of any queue
    .order_by(runs.c.is_root, runs.c.root_id, runs.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True, key_share=True)
)
_OPTIONS = select(tasks.c.id, tasks.c.options).where(
    tasks.c.id.in_(bindparam("ids", expanding=True))
)
_BUSY = (
    select(runs.c.task_id, func.count())
    .join(attempts, attempts.c.run_id == runs.c.id)
    .where(
        _LIVE,
        attempts.c.waiting.is_(False),
        runs.c.task_id.in_(bindparam("task_ids", expanding=True)),
    )
    .group_by(runs.c.task_id)
)


def slots(conn: Connection, workspace_id: str) -> Slots:
    """The workspace's limit and live attempts; its row stays locked until the transaction ends.

    The lock serialises admission passes across schedulers (a no-op on SQLite, where there is
    one writer at a time anyway).
    """
    params = {"workspace_id": workspace_id}
    limit = conn.scalar(_LOCK_WORKSPACE, params)
    # counted in a statement of its own, after the lock: on PostgreSQL a statement that waited
    # for the lock would count with the snapshot it took before waiting
    active, waiting = conn.execute(_ACTIVE, params).one()
    return Slots(int(limit or 0), int(active), int(waiting))


def held_by(conn: Connection, workspace_id: str, scheduler_id: str) -> int:
    """Slots of the workspace the attempts of one scheduler hold."""
    params = {"workspace_id": workspace_id, "scheduler_id": scheduler_id}
    return int(conn.scalar(_HELD_BY, params) or 0)


def resumable(conn: Connection, workspace_id: str, limit: int) -> list[AnyRow]:
    """Waiting attempts none of whose awaited children is unfinished, locked, oldest tree first."""
    return list(conn.execute(_RESUMABLE, {"workspace_id": workspace_id, "limit": limit}).all())


def admissible(conn: Connection, workspace_id: str, now: datetime, count: int) -> list[AnyRow]:
    """The next `count` pending runs whose backoff has passed, in admission order, locked
    (other schedulers skip them)."""
    params = {"workspace_id": workspace_id, "now": now, "limit": count}
    return list(conn.execute(_ADMISSIBLE, params).all())


class TaskOptionsCache:
    """Each task's options by id: a task row never changes once registered."""

    def __init__(self) -> None:
        self._options: dict[str, TaskOptions] = {}

    def of(self, conn: Connection, task_ids: set[str]) -> dict[str, TaskOptions]:
        missing = task_ids - self._options.keys()
        if missing:
            rows = conn.execute(_OPTIONS, {"ids": sorted(missing)})
            for task_id, text in rows:
                self._options[task_id] = options_from_json(text)
        return {task_id: self._options[task_id] for task_id in task_ids}


def task_room(
    conn: Connection, workspace_id: str, options: dict[str, TaskOptions]
) -> dict[str, int]:
    """How many more attempts each task with a `concurrency` limit may start now."""
    limited = {task_id: o.concurrency for task_id, o in options.items() if o.concurrency}
    if not limited:
        return {}
    rows = conn.execute(_BUSY, {"workspace_id": workspace_id, "task_ids": sorted(limited)})
    return admission_rules.task_room(limited, {task_id: count for task_id, count in rows})
