"""`make bench`: Conveyor beside Celery and RQ, on this machine, in one process tree.

Every system is started by this process, measured with the same workloads through its own
client, and stopped before the next one starts; the rounds go through every system in turn.
The summary table is printed and written, with the machine and the versions, to
bench/RESULTS.md; everything measured goes to results.json in the invocation's work folder,
from which `--render` writes the report again.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench import processes, procstat
from bench.document import render
from bench.machine import describe_machine, local_versions
from bench.options import Options, parse
from bench.postgres import ADMIN_DSN, server_version
from bench.report import markdown, summary
from bench.results import Measurement, Record, RunInfo, load, save
from bench.runner import Runner
from bench.services import REDIS_HOST, REDIS_PORT, redis_version
from bench.systems import Kind, System, runs_workload
from bench.targets import Place
from bench.venvs import VenvError, ensure_venv


def say(line: str) -> None:
    print(line, flush=True)


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z")


async def _services(options: Options) -> dict[str, str]:
    """The versions of the services the selection needs; a clear error when one is missing."""
    versions = {}
    needs_postgres = any(
        s.database == "postgres" for s in options.systems if s.kind is Kind.CONVEYOR
    )
    if needs_postgres:
        found = await server_version()
        if found is None:
            raise SystemExit(
                f"error: PostgreSQL does not answer at {ADMIN_DSN} (run `make services`,"
                " or leave out the postgres configurations with --systems)"
            )
        versions["PostgreSQL"] = found
    if any(s.is_peer for s in options.systems):
        found = await redis_version()
        if found is None:
            raise SystemExit(
                f"error: Redis does not answer at {REDIS_HOST}:{REDIS_PORT}; Celery and RQ need"
                " it (or leave them out: --systems 'conveyor/*')"
            )
        versions["Redis server"] = found
    return versions


def _order(systems: Sequence[System], round: int) -> list[System]:
    """Every system once per round, starting one further each round."""
    shift = (round - 1) % len(systems)
    return [*systems[shift:], *systems[:shift]]


async def run(options: Options, command: str) -> int:
    processes.adopt_orphans()
    try:
        return await _measure(options, command)
    finally:
        processes.kill_leftovers()


async def _measure(options: Options, command: str) -> int:
    service_versions = await _services(options)
    place = Place.create(options.work_dir)
    for kind in sorted({s.kind for s in options.systems if s.is_peer}):
        try:
            place.venvs[kind] = await ensure_venv(kind, say)
        except VenvError as exc:
            raise SystemExit(f"error: {exc}") from None
    runner = Runner(options, place, say)
    pairs = sum(1 for s in options.systems for w in options.workloads if runs_workload(s, w))
    say(
        f"{len(options.systems)} systems, {pairs} (system, workload) pairs, {options.rounds}"
        f" round(s), a budget of {options.budget_s:g} s per workload; logs in {place.root}"
    )
    started, load_before = time.monotonic(), procstat.load_average()
    started_at = _now()
    measurements: list[Measurement] = []
    for round in range(1, options.rounds + 1):
        for system in _order(options.systems, round):
            measurements += await runner.system(system, round)
            save(place.root / "results.json", measurements)
        for system in _order(options.systems, round):
            measurements += await runner.after_round(system, round)
        save(place.root / "results.json", measurements)
    versions = {**local_versions(), **runner.versions, **service_versions}
    run_info = RunInfo(
        command=command,
        started=started_at,
        finished=_now(),
        minutes=(time.monotonic() - started) / 60,
        load_before=f"{load_before:.2f}",
        load_after=f"{procstat.load_average():.2f}",
    )
    record = Record(
        run=run_info,
        rounds=options.rounds,
        budget_s=options.budget_s,
        sizes=options.sizes,
        machine=describe_machine(),
        versions=versions,
        measurements=measurements,
    )
    save(place.root / "results.json", record)
    publish(record, options.output)
    place.prune()
    return 0


def publish(record: Record, output: Path) -> None:
    """Prints the summary and writes the report."""
    say("")
    say(markdown(summary(record.measurements, record.sizes)))
    say("")
    say("versions: " + ", ".join(f"{k} {v}" for k, v in record.versions.items()))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(record))
    say(f"wrote {output} ({record.run.minutes:.1f} min of measuring)")


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    options = parse(args)
    if options.render is not None:
        # the report again, from what an earlier invocation measured
        publish(load(options.render), options.output)
        return
    command = "make bench" + (f" ARGS={shlex.quote(shlex.join(args))}" if args else "")
    try:
        sys.exit(asyncio.run(run(options, command)))
    except KeyboardInterrupt:
        sys.exit(130)
