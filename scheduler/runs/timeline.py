"""A run tree's history, for a waterfall: its runs with their attempts, and when each attempt
stopped holding a slot to wait on its children and when it resumed (the `attempt_events`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, select

from core.domain import RunInfo
from scheduler.runs.rows import attempt_events, attempts, runs
from scheduler.runs.summaries import summaries, summary_query

WAIT_KINDS = ("waiting", "resumed")


@dataclass(frozen=True)
class TreeHistory:
    """Runs of one tree (oldest first, at most the limit asked for) and their waits.

    `waits[run_id][attempt]` lists `("waiting" | "resumed", at)` in the order they happened.
    """

    root_id: str
    runs: list[RunInfo]
    total: int  # runs in the tree, including those beyond the limit
    waits: dict[str, dict[int, list[tuple[str, datetime]]]] = field(default_factory=dict)

    @property
    def cut(self) -> bool:
        return self.total > len(self.runs)


def tree_history(
    conn: Connection, workspace_id: str, root_id: str, limit: int, *, include: str | None = None
) -> TreeHistory:
    """The first `limit` runs of the tree rooted at `root_id`, plus run `include` if beyond it.

    An unknown root (or one of another workspace) gives an empty history.
    """
    in_tree = summary_query(workspace_id).where(runs.c.root_id == root_id)
    rows = list(conn.execute(in_tree.order_by(runs.c.id).limit(limit)).all())
    total = len(rows)
    if len(rows) == limit:
        count = select(func.count()).where(
            runs.c.workspace_id == workspace_id, runs.c.root_id == root_id
        )
        total = int(conn.scalar(count) or 0)
    if include is not None and total > len(rows) and all(row.id != include for row in rows):
        rows.extend(conn.execute(in_tree.where(runs.c.id == include)).all())
    tree_runs = summaries(conn, rows)
    return TreeHistory(root_id, tree_runs, total, _waits(conn, workspace_id, root_id, limit))


def _waits(
    conn: Connection, workspace_id: str, root_id: str, limit: int
) -> dict[str, dict[int, list[tuple[str, datetime]]]]:
    query = (
        select(attempts.c.run_id, attempts.c.number, attempt_events.c.kind, attempt_events.c.at)
        .join(attempts, attempts.c.id == attempt_events.c.attempt_id)
        .join(runs, runs.c.id == attempts.c.run_id)
        .where(
            runs.c.workspace_id == workspace_id,
            runs.c.root_id == root_id,
            attempt_events.c.kind.in_(WAIT_KINDS),
        )
        .order_by(attempt_events.c.id)
        # a parent waits and resumes about once per child it awaits: bounded like the runs
        .limit(limit * 20)
    )
    waits: dict[str, dict[int, list[tuple[str, datetime]]]] = defaultdict(lambda: defaultdict(list))
    for run_id, number, kind, at in conn.execute(query):
        waits[run_id][number].append((kind, at))
    return {run_id: dict(by_attempt) for run_id, by_attempt in waits.items()}
