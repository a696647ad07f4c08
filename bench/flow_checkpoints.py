"""What a flow's checkpoint costs: a flow of N inline steps against a plain loop of the same
calls, both timed inside their worker (`python -m bench.flow_checkpoints [--steps N]`).

Runs in this process's engine on SQLite (or `--database-url`), with the local executor, as
`conveyor dev` does; prints milliseconds per step of each and the difference. `make bench` runs it
as W6 for each configuration with Conveyor's SDK (bench/runner.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from bench.in_process import bench_engine
from core.domain import RunStatus
from core.settings import DatabaseSettings, ExecutorSettings, Settings
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime


async def _seconds(runtime: Runtime, task: str, steps: int) -> float:
    run = await runtime.service.create_run(DEFAULT_WORKSPACE_ID, task, [steps])
    done = await runtime.service.wait_run(DEFAULT_WORKSPACE_ID, run.id, 600)
    if done.status is not RunStatus.SUCCEEDED or not done.results:
        raise RuntimeError(f"{task} ended {done.status}: {done.error}")
    result: dict[str, Any] = done.results[0]
    if result["total"] != steps * (steps - 1) // 2:
        raise RuntimeError(f"{task} computed {result['total']}")
    return float(result["seconds"])


async def measure(
    steps: int, database_url: str | None, *, sandbox: bool = True, zygote: bool = True
) -> dict[str, float]:
    def settings(data_dir: Path) -> Settings:
        return Settings(
            data_dir=data_dir,
            database=DatabaseSettings(url=database_url),
            executor=ExecutorSettings(sandbox="on" if sandbox else "off", zygote=zygote),
        )

    async with bench_engine("flows", settings, sandbox_required=False) as runtime:
        loop = await _seconds(runtime, "bench/plain_loop", steps)
        flow = await _seconds(runtime, "bench/checkpointed", steps)
    return {
        "steps": steps,
        "loop_ms_per_step": loop * 1000 / steps,
        "flow_ms_per_step": flow * 1000 / steps,
        "checkpoint_ms": (flow - loop) * 1000 / steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL; SQLite by default")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.steps, args.database_url)), indent=2))


if __name__ == "__main__":
    main()
