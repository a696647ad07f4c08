"""The arithmetic of an admission pass, apart from the reads that feed it (`admission.py`).

Free slots are the workspace's limit less its active attempts; with several schedulers alive
each takes its share of the limit; a task with a `concurrency` option has room for that many
active attempts less those it has; pending runs are taken in order, skipping tasks with no room.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from scheduler.runs.rows import AnyRow


@dataclass(frozen=True)
class Slots:
    """A workspace's slots as one admission pass sees them."""

    limit: int
    active: int
    waiting: int  # attempts waiting on children: maybe resumable

    @property
    def free(self) -> int:
        return self.limit - self.active


def scheduler_share(free: int, limit: int, schedulers: int, held: int) -> int:
    """How many of `free` slots one of `schedulers` live schedulers may fill, holding `held`:
    up to its part of the limit (rounded up, so that together they can fill it)."""
    if schedulers <= 1:
        return free
    return min(free, math.ceil(limit / schedulers) - held)


def task_room(limits: Mapping[str, int], busy: Mapping[str, int]) -> dict[str, int]:
    """How many more attempts each limited task may start: its limit less its active ones."""
    return {task_id: limit - busy.get(task_id, 0) for task_id, limit in limits.items()}


def choose(pending: list[AnyRow], room: Mapping[str, int], free: int) -> list[AnyRow]:
    """The pending runs to start now: in order, skipping tasks at their own limit."""
    chosen: list[AnyRow] = []
    left = dict(room)
    for run in pending:
        if len(chosen) == free:
            break
        if run.task_id in left:
            if left[run.task_id] <= 0:
                continue
            left[run.task_id] -= 1
        chosen.append(run)
    return chosen
