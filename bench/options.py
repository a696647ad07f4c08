"""The harness's command line: rounds, sizes, time budgets, which systems and workloads."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.systems import SelectionError, System, select_systems, select_workloads

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"


@dataclass(frozen=True)
class Sizes:
    """How much work each workload asks for (before any cap by the time budget)."""

    round_trips: int = 200  # W1
    burst: int = 2000  # W2
    fanouts: tuple[int, ...] = (200, 1000)  # W3
    fanout_budget_s: float = 30.0  # W3's time budget (the others': --budget)
    chain: int = 50  # W4
    queue_depths: tuple[int, int] = (100, 100_000)  # W5
    admitted: int = 100  # W5: the first runs timed at each depth
    checkpoints: int = 1000  # W6: inline steps of one flow
    sleepers: int = 500  # W7: runs asleep at once (the workspace's limit)
    sleep_s: float = 20.0  # W7: how long each sleeps
    slots: int = 2  # execution slots of every system
    wide_slots: int = 20  # W2 again at this concurrency
    probe: int = 20  # runs submitted at once to size W2 and W3 to the budget


QUICK_SIZES = Sizes(
    round_trips=20,
    burst=200,
    fanouts=(20, 100),
    fanout_budget_s=3.0,
    chain=10,
    queue_depths=(100, 10_000),
    admitted=20,
    checkpoints=200,
    sleepers=100,
    sleep_s=10.0,
    probe=10,
)


@dataclass(frozen=True)
class Options:
    systems: tuple[System, ...]
    workloads: tuple[str, ...]
    rounds: int
    sizes: Sizes
    budget_s: float  # wall time one workload may take before its count is capped
    output: Path
    work_dir: Path  # logs, data dirs and the raw results of each invocation
    render: Path | None  # only write the report again from this results.json
    quick: bool


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Conveyor beside Celery and RQ: same workloads, same machine, one table.",
    )
    p.add_argument("--quick", action="store_true", help="1 round, small counts, short budget")
    p.add_argument("--rounds", type=int, help="rounds, interleaved between systems (default 3)")
    p.add_argument(
        "--systems",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="shell patterns over system names, e.g. 'conveyor/zygote/*' rq celery (default all)",
    )
    p.add_argument(
        "--workloads",
        default="",
        help="comma list of W1..W7 (default all)",
    )
    p.add_argument(
        "--budget",
        type=float,
        help="seconds one workload may take; bigger counts are capped to fit (default 6, quick 3)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=BENCH_DIR / "RESULTS.md",
        help="the Markdown report (default bench/RESULTS.md)",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=CACHE_DIR / "work",
        help="where each invocation keeps logs, data and raw results (default bench/.cache/work)",
    )
    p.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="measure nothing: write the report again from an earlier invocation's results.json",
    )
    return p


def parse(argv: Sequence[str] | None = None) -> Options:
    p = parser()
    args = p.parse_args(argv)
    try:
        systems = select_systems(args.systems)
        workloads = select_workloads(args.workloads.split(","))
    except SelectionError as exc:
        p.error(str(exc))
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if rounds < 1:
        p.error("--rounds must be at least 1")
    budget = args.budget if args.budget is not None else (3.0 if args.quick else 6.0)
    if budget <= 0:
        p.error("--budget must be positive")
    sizes = QUICK_SIZES if args.quick else Sizes()
    return Options(
        systems=tuple(systems),
        workloads=tuple(workloads),
        rounds=rounds,
        sizes=sizes,
        budget_s=budget,
        output=args.output,
        work_dir=args.work_dir,
        render=args.render,
        quick=args.quick,
    )
