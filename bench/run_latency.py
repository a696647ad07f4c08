"""Per-run overhead of the embedded engine against its floor: a bare interpreter start per task.

Every Conveyor run is its own process, so no engine of this design can beat "start Python, import
the SDK, exit". This measures, in one process tree on this machine:

- floor: `python -c "import conveyor"` started and awaited, sequentially;
- sequential: one root run of a trivial task at a time, from create to succeeded;
- fan-out: one run that fans out to N children at max_concurrency C, end to end.

Usage: .venv/bin/python bench/run_latency.py [--runs 20] [--fanout 40] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.settings import DatabaseSettings, LimitSettings, Settings
from scheduler.runtime import DEFAULT_WORKSPACE_ID as WS
from scheduler.runtime import Runtime

WORKFLOW = """
import asyncio
from conveyor import TaskContext, Workflows

app = Workflows()

@app.task
def square(a: int) -> int:
    return a * a

@app.task
async def fan(ctx: TaskContext, n: int) -> int:
    return sum(await asyncio.gather(*(ctx.run(square, i) for i in range(n))))
"""


def floor(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import conveyor"], check=True)
        times.append(time.perf_counter() - started)
    return times


async def engine(runs: int, fanout: int, concurrency: int) -> tuple[list[float], float]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "wf").mkdir()
        (root / "wf" / "main.py").write_text(WORKFLOW)
        settings = Settings(
            data_dir=root / "data",
            database=DatabaseSettings(),
            limits=LimitSettings(max_concurrency=concurrency),
        )
        runtime = await Runtime.open(settings)
        try:
            await runtime.register_workflow(
                root / "wf", slug="bench", start_command="conveyor-worker main:app"
            )
            await runtime.start()
            times = []
            for n in range(runs):
                started = time.perf_counter()
                run = await runtime.service.create_run(WS, "bench/square", [n])
                done = await runtime.service.wait_run(WS, run.id, 60)
                assert done.results == [n * n], done
                times.append(time.perf_counter() - started)
            started = time.perf_counter()
            run = await runtime.service.create_run(WS, "bench/fan", [fanout])
            done = await runtime.service.wait_run(WS, run.id, 600)
            assert done.results == [sum(i * i for i in range(fanout))], done
            return times, time.perf_counter() - started
        finally:
            await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--fanout", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    floor_times = floor(args.runs)
    run_times, fan_seconds = asyncio.run(engine(args.runs, args.fanout, args.concurrency))
    floor_median = statistics.median(floor_times)
    run_median = statistics.median(run_times)
    print(f"floor (python -c 'import conveyor'): median {floor_median * 1000:.0f} ms")
    print(
        f"sequential runs: median {run_median * 1000:.0f} ms, p90 "
        f"{statistics.quantiles(run_times, n=10)[-1] * 1000:.0f} ms"
    )
    print(f"ratio run / floor: {run_median / floor_median:.2f}")
    # the floor is CPU-bound: no more than one child per core runs at full speed
    parallel = min(args.concurrency, os.cpu_count() or 1)
    ideal = args.fanout * floor_median / parallel
    print(
        f"fan-out of {args.fanout} at concurrency {args.concurrency}: {fan_seconds:.2f} s "
        f"({args.fanout / fan_seconds:.1f} runs/s; floor-bound ideal {ideal:.2f} s, "
        f"ratio {fan_seconds / ideal:.2f})"
    )


if __name__ == "__main__":
    main()
