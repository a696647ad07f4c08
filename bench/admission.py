"""W5: what admitting a run costs with 100 and with 100,000 runs pending (PostgreSQL).

For each depth, on a fresh database: `conveyor dev` registers the workflow and stops;
`conveyor server` (the API alone) takes one run, which is copied into a queue of that depth;
then `conveyor scheduler` starts, and the first runs in admission order are timed from the
first completion to the last one within the budget (server timestamps): ms per run.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from bench import processes, procstat
from bench.conveyor_target import (
    CONVEYOR,
    conveyor_env,
    dev_argv,
    driver_argv,
    workflow_copy,
)
from bench.driver_client import Driver
from bench.options import Options
from bench.postgres import fresh_database
from bench.queue_fill import fill_queue
from bench.results import Measurement, failed
from bench.systems import System
from bench.targets import Place, clean_env


async def _register(system: System, folder: Path, env: dict[str, str], slots: int) -> None:
    """`conveyor dev` creates the schema and registers the workflow, then stops."""
    port = processes.free_port()
    log = folder / "register.log"
    argv = dev_argv(system, workflow_copy(system, folder), folder / "data", port, slots)
    dev = await processes.start(argv, env, log)
    try:
        await processes.wait_healthy(f"http://127.0.0.1:{port}", dev, log)
    finally:
        await processes.stop(dev)


async def one_depth(
    system: System, round: int, depth: int, options: Options, place: Place
) -> Measurement:
    slots, admitted = options.sizes.slots, options.sizes.admitted
    key = f"W5/{depth}"
    folder = place.folder(f"{system.name}-w5-{depth}")
    async with fresh_database() as database, AsyncExitStack() as stack:
        env = {**conveyor_env(system, database, slots), "CONVEYOR_DATA_DIR": str(folder / "data")}
        await _register(system, folder, env, slots)
        keys_argv = [CONVEYOR, "keys", "create", "--data-dir", str(folder / "data")]
        api_key = (await processes.run_to_end(keys_argv, env, folder / "keys.log")).strip()
        port = processes.free_port()
        server_log = folder / "server.log"
        server = await processes.start([CONVEYOR, "server", "--port", str(port)], env, server_log)
        stack.push_async_callback(processes.stop, server)
        url = f"http://127.0.0.1:{port}"
        await processes.wait_healthy(url, server, server_log)
        driver = await stack.enter_async_context(
            Driver(driver_argv(url, api_key), folder / "driver.log", clean_env())
        )
        first = [(await driver.call({"op": "submit"}, 60))["run_id"]]
        queued = await fill_queue(database.dsn, first[0], depth - 1)
        first += queued[: admitted - 1]
        load = procstat.load_average()
        scheduler = await processes.start([CONVEYOR, "scheduler"], env, folder / "scheduler.log")
        stack.push_async_callback(processes.stop, scheduler)
        request = {
            "op": "await_runs",
            "run_ids": first,
            "budget_s": options.budget_s,
            "timeout_s": 120,
        }
        reply = await driver.call(request, options.budget_s + 180)
    stamps = reply["completed_at"]
    if len(stamps) < 2:
        return failed(system.name, key, round, len(first), load, "timeout")
    ms_per_run = (stamps[-1] - stamps[0]) * 1000 / (len(stamps) - 1)
    return Measurement(
        system.name,
        key,
        round,
        metrics={"ms_per_run": ms_per_run},
        size=len(stamps),
        wanted=len(first),
        load=load,
    )


def ratio(system: System, round: int, at: list[Measurement]) -> Measurement | None:
    """W5's figure: ms per run at the deepest queue over ms per run at the shallowest."""
    good = [m for m in at if m.failure is None]
    if len(good) != 2:
        return None
    shallow, deep = sorted(good, key=lambda m: int(m.workload.split("/")[1]))
    value = deep.metrics["ms_per_run"] / shallow.metrics["ms_per_run"]
    return Measurement(
        system.name,
        "W5/ratio",
        round,
        metrics={"ratio": value},
        size=min(shallow.size, deep.size),
        wanted=max(shallow.wanted, deep.wanted),
        load=deep.load,
    )
