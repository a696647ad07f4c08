"""The local instances a control plane started, written down as they start.

An instance's handle reaches the database a moment after its process exists (with the next
transaction). Should the control plane die in between, the next one on this host still finds
the instance here and watches it again instead of running its task a second time. One line per
instance, appended to a file of the process's own in the data dir: a write to the page cache,
which outlives the process that made it. A starting control plane takes over the files of
processes that are gone (several schedulers may share a host and a data dir), then keeps its
own, rewritten now and then to hold only the instances that still run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from core.data_dir import make_private_dirs
from core.liveness import pid_alive

Handle = dict[str, Any]

_COMPACT_EVERY = 1000  # lines written beyond the live instances before the file is rewritten


class InstanceJournal:
    def __init__(self, folder: Path) -> None:
        make_private_dirs(folder)
        self._path = folder / f"{os.getpid()}.jsonl"
        gone = [path for path in folder.glob("*.jsonl") if not _alive(path)]
        self._left: dict[str, Handle] = {}  # what control planes that are gone left
        for path in gone:
            self._left.update(_read(path))
        self._live: dict[str, Handle] = {}
        self._written = 0
        # carried over until the first rewrite: should this control plane die before it has
        # reconciled them, the next one still finds them
        self._fd = self._open_fresh(carry=self._left)
        for path in gone:
            if path != self._path:
                path.unlink(missing_ok=True)

    def record(self, attempt_id: str, handle: Handle) -> None:
        """An instance of `attempt_id` runs: written before anything else is asked of it."""
        self._live[attempt_id] = handle
        os.write(self._fd, _line(attempt_id, handle))
        self._written += 1
        if self._written > len(self._live) + _COMPACT_EVERY:
            self._compact()

    def forget(self, attempt_id: str) -> None:
        """The instance is gone."""
        self._live.pop(attempt_id, None)

    def left(self, attempt_id: str) -> Handle | None:
        """The handle the previous control plane wrote for `attempt_id`, if it did."""
        return self._left.get(attempt_id)

    def close(self) -> None:
        os.close(self._fd)

    def _open_fresh(self, carry: dict[str, Handle]) -> int:
        staging = self._path.with_suffix(".new")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        for attempt_id, handle in {**carry, **self._live}.items():
            os.write(fd, _line(attempt_id, handle))
        os.replace(staging, self._path)
        self._written = len(self._live)
        return fd

    def _compact(self) -> None:
        old = self._fd
        self._fd = self._open_fresh(carry={})
        os.close(old)


def _alive(path: Path) -> bool:
    """Whether the process a journal file is named after still runs (not this one)."""
    if not path.stem.isdigit() or int(path.stem) == os.getpid():
        return False
    return pid_alive(int(path.stem))


def _line(attempt_id: str, handle: Handle) -> bytes:
    return (json.dumps({"attempt": attempt_id, "handle": handle}) + "\n").encode()


def _read(path: Path) -> dict[str, Handle]:
    found: dict[str, Handle] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return found
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            found[str(entry["attempt"])] = dict(entry["handle"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by the crash
    return found
