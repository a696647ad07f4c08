"""bench/RESULTS.md: the summary, each configuration's medians, failures, machine, versions."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench.options import Sizes
from bench.report import Row, markdown, number, rows, summary
from bench.results import Measurement, Record
from bench.systems import ALL_SYSTEMS

HOW_TO_READ = """\
Each cell is the range over the rounds; a Conveyor column also spans its configurations (both
SDKs, SQLite and PostgreSQL; each one's medians are in the next table). "capped at N of M": the
configuration could not do M in the time budget, so N were measured; a fan-out of 1,000 is
skipped where the one of 200 was already capped. A ÷ column divides each Conveyor
configuration's median by the peer's median: above 1, Conveyor takes more time, CPU or memory,
or (for runs/s) does more runs per second; "~" marks a capped workload compared per child or
per level. CPU per run: control plane = Conveyor's server process (all its threads), Celery's
main process, RQ's worker processes; worker side = every process below them (attempts and
zygotes, Celery's pool, RQ's work horses). Redis and PostgreSQL are not counted. Peak RSS is
sampled every 0.2 s. CPU used outside the bench: what other processes on the (shared) machine
took meanwhile; well above 0, every figure of that workload suffered from it."""


def _detail_cell(row: Row, values: list[tuple[Measurement, float]]) -> str:
    if not values:
        return ""
    text = number(statistics.median(v for _, v in values))
    capped = [m.size for m, _ in values if m.capped]
    return f"{text} ({min(capped):,})" if capped and row.says_capped else text


def details(measurements: Sequence[Measurement], sizes: Sizes) -> list[list[str]]:
    """One row per configuration, one column per figure: medians over the rounds."""
    figures = rows(sizes)
    header = ["configuration", *(r.short for r in figures)]
    table = [header]
    for system in ALL_SYSTEMS:
        mine = [m for m in measurements if m.system == system.name]
        if not mine:
            continue
        cells = []
        for row in figures:
            of = [m for m in mine if row.workload in ("*", m.workload)]
            good = [(m, v) for m in of if (v := row.value(m)) is not None]
            good = [(m, v) for m, v in good if m.failure is None or row.of_failures]
            failures = sorted({(m.failure or "").split(":")[0] for m in of if m.failure})
            cells.append(_detail_cell(row, good) or ", ".join(failures))
        table.append([system.name, *cells])
    return table


def failures(measurements: Sequence[Measurement]) -> list[str]:
    return [
        f"- round {m.round}, {m.system}, {m.workload}: {m.failure}"
        for m in measurements
        if m.failure is not None and not m.failure.startswith("skipped")
    ]


def zygote_notes(measurements: Sequence[Measurement]) -> list[str]:
    """Says so when "zygote" configurations showed no process waiting between runs: an engine
    without the setting spawns every attempt, and both columns measure the same thing."""
    zygote = [m for m in measurements if "/zygote/" in m.system and m.usage is not None]
    if not zygote or any(m.usage and m.usage.idle_processes for m in zygote):
        return []
    return [
        "No process waited below Conveyor's control plane between runs in the zygote"
        " configurations (CONVEYOR_EXECUTOR__ZYGOTE=true): this engine spawns every attempt, so"
        " its zygote and spawn columns measure the same executor.",
        "",
    ]


def render(record: Record) -> str:
    run, sizes, measured = record.run, record.sizes, record.measurements
    lines = [
        "# Benchmark results",
        "",
        f"`{run.command}` from {run.started} to {run.finished} ({run.minutes:.0f} min):"
        f" {record.rounds} round(s) interleaved between systems, a time budget of"
        f" {record.budget_s:g} s per workload ({sizes.fanout_budget_s:g} s for W3),"
        f" {sizes.slots} execution slots unless stated."
        " Written by the harness (bench/harness.py); see docs/benchmarks.md.",
        "",
        markdown(summary(measured, sizes)),
        "",
        *zygote_notes(measured),
        HOW_TO_READ,
        "",
        "## Per configuration (median over rounds; (N): capped at N)",
        "",
        markdown(details(measured, sizes)),
        "",
    ]
    failed = failures(measured)
    if failed:
        lines += ["## Failures", "", *failed, ""]
    lines += ["## Machine", ""]
    lines += [f"- {key}: {value}" for key, value in record.machine.items()]
    lines += [f"- load average: {run.load_before} before, {run.load_after} after", ""]
    lines += ["## Versions", "", markdown([["component", "version"], *record.versions.items()])]
    return "\n".join([*lines, ""])
