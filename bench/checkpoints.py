"""W6: what a flow's checkpoint costs — a flow of N inline steps against a plain loop of the same
calls, in an engine this process opens with the configuration's database, sandbox and executor
mode (bench/flow_checkpoints.py). Conveyor's SDK only: the peers have no flows."""

from __future__ import annotations

from bench import procstat
from bench.flow_checkpoints import measure
from bench.postgres import fresh_database
from bench.results import Measurement
from bench.systems import System


async def one_flow(system: System, round: int, steps: int) -> Measurement:
    load = procstat.load_average()
    options = {"sandbox": system.sandbox, "zygote": system.mode == "zygote"}
    if system.database == "postgres":
        async with fresh_database() as database:
            figures = await measure(steps, database.url, **options)
    else:
        figures = await measure(steps, None, **options)
    return Measurement(
        system.name,
        "W6",
        round,
        metrics={
            "checkpoint_ms": figures["checkpoint_ms"],
            "flow_ms_per_step": figures["flow_ms_per_step"],
            "loop_ms_per_step": figures["loop_ms_per_step"],
        },
        size=steps,
        wanted=steps,
        load=load,
    )
