"""Where the control plane's time goes per run: N no-op runs through an engine in this process.

`python -m bench.control_plane [--runs N] [--slots S] [--database-url URL]` opens the engine on
SQLite (or `--database-url`) with the local executor, a warm zygote and the sandbox, as
`conveyor dev` does, submits N runs of the bench workflow's `add` at once and waits for every
result; it prints the wall time, runs per second and this process's CPU per run (the whole
control plane: API service, scheduler, agent, database threads; the workers are other
processes). Run it under `py-spy record --gil` for the profile docs/benchmarks.md keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from pathlib import Path

from bench.in_process import bench_engine
from core.domain import RunStatus
from core.settings import DatabaseSettings, LimitSettings, Settings
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _runs(runtime: Runtime, count: int) -> None:
    service = runtime.service
    created = [
        await service.create_run(DEFAULT_WORKSPACE_ID, "bench/add", [n, 1]) for n in range(count)
    ]
    for n, run in enumerate(created):
        done = await service.wait_run(DEFAULT_WORKSPACE_ID, run.id, 600)
        if done.status is not RunStatus.SUCCEEDED or done.results != [n + 1]:
            raise RuntimeError(f"run {run.id} ended {done.status}: {done.error}")


async def measure(runs: int, slots: int, database_url: str | None) -> dict[str, float]:
    def settings(data_dir: Path) -> Settings:
        return Settings(
            data_dir=data_dir,
            database=DatabaseSettings(url=database_url),
            limits=LimitSettings(max_concurrency=slots),
        )

    async with bench_engine("conveyor_sdk", settings) as runtime:
        await _runs(runtime, slots)  # the zygote warm, the statements cached
        cpu, wall = _cpu_seconds(), time.perf_counter()
        await _runs(runtime, runs)
        cpu, wall = _cpu_seconds() - cpu, time.perf_counter() - wall
    return {
        "runs": runs,
        "slots": slots,
        "seconds": wall,
        "runs_per_s": runs / wall,
        "control_cpu_ms_per_run": cpu * 1000 / runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--database-url", default=None, help="PostgreSQL; SQLite by default")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.runs, args.slots, args.database_url))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
