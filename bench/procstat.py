"""CPU time and memory of a process tree, read from /proc (Linux).

A process's own CPU (utime+stime) covers all its threads; what its reaped children used is in
its cutime+cstime. So the CPU of a whole tree, dead members included, is the sum over the live
members of both: it only grows, as long as every process is reaped by its parent.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20
PROC = Path("/proc")


@dataclass(frozen=True)
class Stat:
    name: str  # the command's name (comm), e.g. "postgres"
    ppid: int
    own_s: float  # utime + stime
    reaped_s: float  # cutime + cstime
    rss_mb: float
    started: int  # clock ticks after boot: with the pid, names one process for good


def read_stat(pid: int) -> Stat | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces: fields start after the last ")"
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return Stat(
        name=text[text.index("(") + 1 : text.rindex(")")],
        ppid=int(fields[1]),
        own_s=(utime + stime) * TICK_S,
        reaped_s=(cutime + cstime) * TICK_S,
        rss_mb=int(fields[21]) * PAGE_MB,
        started=int(fields[19]),
    )


def all_stats() -> dict[int, Stat]:
    stats = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := read_stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    return stats


def descendants(stats: dict[int, Stat], roots: Iterable[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        children.setdefault(stat.ppid, []).append(pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@dataclass(frozen=True)
class TreeSample:
    control_cpu_s: float
    total_cpu_s: float
    control_rss_mb: float
    total_rss_mb: float
    below: int  # live processes under the control plane


def tree_cpu_s(stats: dict[int, Stat], roots: Collection[int]) -> float:
    """CPU of the trees below `roots` (included), dead members included."""
    members = set(roots) | descendants(stats, roots)
    return sum(stats[p].own_s + stats[p].reaped_s for p in members if p in stats)


def sample(control: Collection[int]) -> TreeSample:
    stats = all_stats()
    below = descendants(stats, control) - set(control)
    members = [stats[pid] for pid in (*control, *below) if pid in stats]
    heads = [stats[pid] for pid in control if pid in stats]
    return TreeSample(
        control_cpu_s=sum(s.own_s for s in heads),
        total_cpu_s=sum(s.own_s + s.reaped_s for s in members),
        control_rss_mb=sum(s.rss_mb for s in heads),
        total_rss_mb=sum(s.rss_mb for s in members),
        below=len(below),
    )


class PeakRss:
    """Samples the tree's resident memory a few times a second while a workload runs."""

    def __init__(self, control: Collection[int], every_s: float = 0.2) -> None:
        self._control = control
        self._every_s = every_s
        self.control_mb = 0.0
        self.total_mb = 0.0
        self._task: asyncio.Task[None] | None = None

    def observe(self, tree: TreeSample) -> None:
        self.control_mb = max(self.control_mb, tree.control_rss_mb)
        self.total_mb = max(self.total_mb, tree.total_rss_mb)

    async def _loop(self) -> None:
        while True:
            self.observe(sample(self._control))
            await asyncio.sleep(self._every_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def quiesce(
    control: Collection[int],
    deadline_s: float = 15.0,
    window_s: float = 0.25,
    busy_cores: float = 0.05,
) -> TreeSample:
    """The tree once it is idle: no process started or ended and under `busy_cores` of CPU used
    over a window (the processes a workload started have exited and been reaped; the engine's
    end-of-run bookkeeping is done). After `deadline_s`, the tree as it is."""
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_s
    tree = sample(control)
    while True:
        await asyncio.sleep(window_s)
        later = sample(control)
        idle = later.total_cpu_s - tree.total_cpu_s < busy_cores * window_s
        if (idle and later.below == tree.below) or loop.time() > until:
            return later
        tree = later


def load_average() -> float:
    return float((PROC / "loadavg").read_text().split()[0])
