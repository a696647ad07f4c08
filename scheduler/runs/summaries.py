"""Runs as summaries: every field of a run and its attempts except payloads and stack traces.

Views that show many runs at once (a tree's waterfall, the queue, live updates) read these, so a
thousand runs cost a few kilobytes each instead of their inputs, outputs and traces.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, String, null, select

from core.domain import RunInfo
from scheduler.runs.rows import AnyRow, attempts, run_info, runs

# what `run_info` reads of a run, with the stack trace left out
RUN_COLUMNS = (
    runs.c.id,
    runs.c.workspace_id,
    runs.c.task_id,
    runs.c.task_name,
    runs.c.workflow_id,
    runs.c.workflow_slug,
    runs.c.version_id,
    runs.c.status,
    runs.c.parent_id,
    runs.c.parent_attempt,
    runs.c.root_id,
    runs.c.created_at,
    runs.c.started_at,
    runs.c.completed_at,
    runs.c.not_before,
    runs.c.error,
    null().cast(String).label("stack_trace"),
)
_ATTEMPT_COLUMNS = (
    attempts.c.run_id,
    attempts.c.number,
    attempts.c.state,
    attempts.c.outcome,
    attempts.c.enqueued_at,
    attempts.c.started_at,
    attempts.c.ended_at,
    attempts.c.waiting,
    attempts.c.error,
    null().cast(String).label("stack_trace"),
    attempts.c.compute_seconds,
    attempts.c.cost_usd,
    attempts.c.exit_code,
    attempts.c.waiting_reason,
)
# SQLite allows 32,766 bound parameters per statement; PostgreSQL 65,535
_CHUNK = 5000


def summary_query(workspace_id: str) -> Select[Any]:
    """Summary rows of the workspace's runs; the caller adds conditions and order."""
    return select(*RUN_COLUMNS).where(runs.c.workspace_id == workspace_id)


def attempts_of(conn: Connection, run_ids: Sequence[str]) -> dict[str, list[AnyRow]]:
    """Each run's attempts (without stack traces), in order."""
    grouped: dict[str, list[AnyRow]] = defaultdict(list)
    for start in range(0, len(run_ids), _CHUNK):
        chunk = list(run_ids[start : start + _CHUNK])
        query = (
            select(*_ATTEMPT_COLUMNS)
            .where(attempts.c.run_id.in_(chunk))
            .order_by(attempts.c.run_id, attempts.c.number)
        )
        for row in conn.execute(query):
            grouped[row.run_id].append(row)
    return grouped


def summaries(conn: Connection, run_rows: Sequence[AnyRow]) -> list[RunInfo]:
    """The runs of `run_rows` (from `summary_query`) with their attempts, in the same order."""
    by_run = attempts_of(conn, [row.id for row in run_rows])
    return [run_info(row, by_run[row.id]) for row in run_rows]


def runs_by_ids(conn: Connection, workspace_id: str, run_ids: Sequence[str]) -> list[RunInfo]:
    """The workspace's runs among `run_ids`, newest first; unknown ids are left out."""
    rows: list[AnyRow] = []
    for start in range(0, len(run_ids), _CHUNK):
        chunk = list(run_ids[start : start + _CHUNK])
        rows.extend(conn.execute(summary_query(workspace_id).where(runs.c.id.in_(chunk))).all())
    rows.sort(key=lambda row: row.id, reverse=True)
    return summaries(conn, rows)
