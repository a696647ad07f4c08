"""W7: hundreds of runs asleep at once on one host (bench/sleepers.py), in an engine this
process opens with the configuration's database. Conveyor's SDK only: the peers' workers are a
fixed pool, not an instance per run."""

from __future__ import annotations

from bench import procstat
from bench.options import Sizes
from bench.postgres import fresh_database
from bench.results import Measurement
from bench.sleepers import measure
from bench.systems import System


async def sleepers(system: System, round: int, sizes: Sizes) -> Measurement:
    load = procstat.load_average()
    if system.database == "postgres":
        async with fresh_database() as database:
            figures = await measure(sizes.sleepers, sizes.sleep_s, database.url)
    else:
        figures = await measure(sizes.sleepers, sizes.sleep_s, None)
    return Measurement(
        system.name,
        "W7",
        round,
        metrics={
            "all_running_s": figures["all_started_s"],
            "pss_mb_per_run": figures["pss_mb_per_run"],
            "control_mb_per_run": figures["control_mb_per_run"],
            "descriptors": figures["control_descriptors_asleep"],
        },
        size=sizes.sleepers,
        wanted=sizes.sleepers,
        load=load,
    )
