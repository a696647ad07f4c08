"""Hundreds of runs asleep at once on one host: how fast they all start, what each idle one
costs in memory, and that no descriptor runs out.

`python -m bench.sleepers [--runs N] [--seconds S] [--database-url URL]` opens the engine in
this process (SQLite unless `--database-url`; local executor, warm zygote, sandbox on, as
`conveyor dev` runs), with the workspace's limit at N, submits N runs of the bench workflow's
`nap(S)` at once, and prints: the seconds until every one's instance had started (and, from the
time the last result came in, by when the last task had certainly started its sleep), the
memory of the control plane and of every process below it while all slept (resident, and
proportional: the pages the forks share counted once), per run, the control plane's open
descriptors, and the seconds until every result was in.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

from sqlalchemy import func, select

from bench.in_process import bench_engine
from bench.procstat import all_stats, descendants
from core.domain import AttemptState, RunStatus
from core.settings import DatabaseSettings, LimitSettings, Settings
from scheduler.runs.rows import attempts
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime


def _pss_mb(pid: int) -> float:
    """Proportional set size: a page shared by k processes counts 1/k in each."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _started(runtime: Runtime) -> int:
    """Attempts whose instance has run (some may have ended already)."""
    states = (AttemptState.RUNNING.value, AttemptState.ENDED.value)
    query = select(func.count()).where(attempts.c.state.in_(states))
    count = await runtime.transitions.writer.db.read(lambda conn: conn.scalar(query))
    return int(count or 0)


def _memory(control: int) -> dict[str, float]:
    stats = all_stats()
    below = descendants(stats, [control])
    return {
        "processes_below": len(below),
        "control_rss_mb": stats[control].rss_mb,
        "below_rss_mb": sum(stats[p].rss_mb for p in below if p in stats),
        "below_pss_mb": sum(_pss_mb(p) for p in below),
    }


async def measure(runs: int, seconds: float, database_url: str | None) -> dict[str, float]:
    def settings(data_dir: Path) -> Settings:
        return Settings(
            data_dir=data_dir,
            database=DatabaseSettings(url=database_url),
            limits=LimitSettings(max_concurrency=runs),
        )

    async with bench_engine("conveyor_sdk", settings) as runtime:
        idle = _memory(os.getpid())
        service = runtime.service
        started = time.perf_counter()
        created = [
            await service.create_run(DEFAULT_WORKSPACE_ID, "bench/nap", [seconds])
            for _ in range(runs)
        ]
        submitted = time.perf_counter() - started
        while (running := await _started(runtime)) < runs:
            if time.perf_counter() - started > seconds:
                raise RuntimeError(f"only {running} of {runs} runs started within {seconds} s")
            await asyncio.sleep(0.05)
        all_started = time.perf_counter() - started
        asleep = _memory(os.getpid())
        descriptors = len(os.listdir("/proc/self/fd"))
        for run in created:
            done = await service.wait_run(DEFAULT_WORKSPACE_ID, run.id, seconds + 600)
            if done.status is not RunStatus.SUCCEEDED:
                raise RuntimeError(f"run {run.id} ended {done.status}: {done.error}")
        all_done = time.perf_counter() - started
    return {
        "runs": runs,
        "submitted_s": submitted,
        "all_started_s": all_started,
        "all_done_s": all_done,
        "last_task_started_by_s": all_done - seconds,
        "control_rss_mb_idle": idle["control_rss_mb"],
        "control_rss_mb_asleep": asleep["control_rss_mb"],
        "processes_asleep": asleep["processes_below"],
        "rss_mb_per_run": (asleep["below_rss_mb"] - idle["below_rss_mb"]) / runs,
        "pss_mb_per_run": (asleep["below_pss_mb"] - idle["below_pss_mb"]) / runs,
        "control_mb_per_run": (asleep["control_rss_mb"] - idle["control_rss_mb"]) / runs,
        "control_descriptors_asleep": descriptors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--database-url", default=None, help="PostgreSQL; SQLite by default")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.runs, args.seconds, args.database_url))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
