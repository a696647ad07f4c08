"""One timed request to a driver, with the system's CPU and memory over the same window."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench import outside, procstat
from bench.results import Usage
from bench.targets import Running


@dataclass(frozen=True)
class Observed:
    reply: dict[str, Any]
    usage: Usage
    load: float


async def observe(
    running: Running,
    request: dict[str, Any],
    timeout_s: float,
    runs_in: Callable[[dict[str, Any]], int],
) -> Observed:
    """Sends `request`; CPU is read when the system is idle before it and idle again after.

    `runs_in(reply)` says how many runs the CPU is divided by. Raises what the driver raises.
    """
    before = await procstat.quiesce(running.control)
    load = procstat.load_average()
    machine_before = outside.machine_sample()
    peak = procstat.PeakRss(running.control)
    peak.observe(before)
    peak.start()
    try:
        reply = await running.driver.call(request, timeout_s)
    finally:
        await peak.stop()
    machine_after = outside.machine_sample()
    after = await procstat.quiesce(running.control)
    peak.observe(after)
    runs = max(1, runs_in(reply))
    control_s = after.control_cpu_s - before.control_cpu_s
    worker_s = (after.total_cpu_s - before.total_cpu_s) - control_s
    usage = Usage(
        control_cpu_ms_per_run=control_s * 1000 / runs,
        worker_cpu_ms_per_run=worker_s * 1000 / runs,
        control_rss_peak_mb=peak.control_mb,
        total_rss_peak_mb=peak.total_mb,
        idle_processes=before.below,
        outside_cores=outside.outside_cores(machine_before, machine_after),
    )
    return Observed(reply, usage, load)


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (1-99), interpolated between the samples."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]
