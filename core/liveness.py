"""Whether a process of the control plane (a scheduler, a builder) is still there.

Each such process has a row it heartbeats; another process decides from that row whether the
work it holds must be taken over.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Protocol


def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this host exists (perhaps another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProcessRow(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def hostname(self) -> str: ...
    @property
    def pid(self) -> int: ...
    @property
    def heartbeat_at(self) -> datetime: ...
    @property
    def stopped_at(self) -> datetime | None: ...


def process_gone(
    row: ProcessRow, *, own_id: str, hostname: str, now: datetime, stale_after: timedelta
) -> bool:
    """Stopped, or its pid is gone on this host, or silent for longer than `stale_after`; the
    asking process (`own_id`) is never gone."""
    if row.id == own_id:
        return False
    if row.stopped_at is not None:
        return True
    if row.hostname == hostname and not pid_alive(row.pid):
        return True
    return now - row.heartbeat_at > stale_after
