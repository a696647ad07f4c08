"""How busy the machine was with work that is not the bench's: other people's processes.

The machine may be shared. Over a workload, the CPU the whole machine spent (/proc/stat) minus
the harness's own process tree (the system under test, its drivers) and the services the
systems use (PostgreSQL, Redis) is what something else took, in cores: near 0 on an idle
machine, up to 2 on this one when another test suite runs beside the bench.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from bench.procstat import PROC, TICK_S, Stat, all_stats, tree_cpu_s

SERVICES = ("postgres", "redis-server")


@dataclass(frozen=True)
class MachineSample:
    at: float
    busy_s: float  # every CPU's non-idle time
    ours_s: float  # the harness's tree and the services


def _busy_s() -> float:
    fields = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) * TICK_S


def _service_roots(stats: dict[int, Stat]) -> list[int]:
    """The services' top processes (PostgreSQL's postmaster, not each backend)."""
    return [
        pid
        for pid, stat in stats.items()
        if stat.name in SERVICES
        and (parent := stats.get(stat.ppid)) is not None
        and parent.name not in SERVICES
    ]


def machine_sample() -> MachineSample:
    stats = all_stats()
    ours = tree_cpu_s(stats, [os.getpid(), *_service_roots(stats)])
    return MachineSample(time.monotonic(), _busy_s(), ours)


def outside_cores(before: MachineSample, after: MachineSample) -> float:
    elapsed = after.at - before.at
    if elapsed <= 0:
        return 0.0
    other = (after.busy_s - before.busy_s) - (after.ours_s - before.ours_s)
    return max(0.0, other / elapsed)
