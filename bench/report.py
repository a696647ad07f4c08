"""The summary table: one row per figure, one column per system, ratios against the peers.

A Conveyor column spans its configurations (both SDKs, both databases): its cell is the range
over them and over the rounds, like a peer's cell is the range over the rounds. A ratio column
divides each Conveyor configuration's median by the peer's median and shows their range.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.options import Sizes
from bench.results import Measurement, Usage
from bench.systems import GROUPS, group_of

Value = Callable[[Measurement], float | None]
EN_DASH, TIMES = "\u2013", "\u00d7"  # as in "196-264 ms" and "12x", typeset


def metric(name: str) -> Value:
    return lambda m: m.metrics.get(name)


def usage(read: Callable[[Usage], float]) -> Value:
    return lambda m: read(m.usage) if m.usage is not None else None


@dataclass(frozen=True)
class Row:
    label: str  # in the summary table
    short: str  # the column's name in the per-configuration table
    workload: str  # the measurements' key; "*" takes every measurement
    value: Value
    extensive: bool = False  # grows with the size (seconds for N children): capped -> per unit
    ratio: bool = True
    says_capped: bool = True  # the workload's own figure, where "capped at N" belongs
    of_failures: bool = False  # failed measurements have this value too


def rows(sizes: Sizes) -> list[Row]:
    narrow, wide = f"W2@{sizes.slots}", f"W2@{sizes.wide_slots}"
    shallow, deep = sizes.queue_depths
    seconds, per_run = metric("seconds"), metric("ms_per_run")
    out = [
        Row(
            f"W1 trigger→result p50, ms ({sizes.round_trips} in a row)",
            "W1 p50 ms",
            "W1",
            metric("p50_ms"),
        ),
        Row("W1 trigger→result p99, ms", "W1 p99 ms", "W1", metric("p99_ms")),
        Row(
            f"W2 {sizes.burst:,} no-op runs at once, runs/s ({sizes.slots} slots)",
            "W2 runs/s",
            narrow,
            metric("runs_per_s"),
        ),
        Row(
            f"W2 runs/s ({sizes.wide_slots} slots)",
            f"W2 runs/s @{sizes.wide_slots}",
            wide,
            metric("runs_per_s"),
        ),
    ]
    out += [
        Row(f"W3 parent awaiting {n:,} children, s", f"W3 {n:,} s", f"W3/{n}", seconds, True)
        for n in sorted(sizes.fanouts)
    ]
    out += [
        Row(f"W4 chain {sizes.chain} deep, s", "W4 s", "W4", seconds, True),
        Row(
            f"W5 admission, ms/run ({shallow:,} pending)",
            f"W5 {shallow:,} ms",
            f"W5/{shallow}",
            per_run,
        ),
        Row(f"W5 admission, ms/run ({deep:,} pending)", f"W5 {deep:,} ms", f"W5/{deep}", per_run),
        Row(
            f"W5 {deep:,} ÷ {shallow:,} pending",
            "W5 ratio",
            "W5/ratio",
            metric("ratio"),
            ratio=False,
        ),
        Row(
            f"W6 a flow's checkpoint, ms per step ({sizes.checkpoints:,} inline steps vs a loop)",
            "W6 ms/step",
            "W6",
            metric("checkpoint_ms"),
            ratio=False,
        ),
        Row(
            f"W7 {sizes.sleepers:,} runs asleep at once: s until all run",
            "W7 s",
            "W7",
            metric("all_running_s"),
            ratio=False,
        ),
        Row(
            "W7 memory per sleeping run, MB (PSS)",
            "W7 MB/run",
            "W7",
            metric("pss_mb_per_run"),
            ratio=False,
        ),
        Row(
            f"W7 control-plane descriptors, {sizes.sleepers:,} asleep",
            "W7 descriptors",
            "W7",
            metric("descriptors"),
            ratio=False,
        ),
        Row(
            f"control-plane CPU per run, ms (W2, {sizes.slots} slots)",
            "control CPU ms/run",
            narrow,
            usage(lambda u: u.control_cpu_ms_per_run),
            says_capped=False,
        ),
        Row(
            "worker-side CPU per run, ms (W2)",
            "worker CPU ms/run",
            narrow,
            usage(lambda u: u.worker_cpu_ms_per_run),
            says_capped=False,
        ),
        Row(
            "peak RSS, control plane, MB (W2)",
            "control RSS MB",
            narrow,
            usage(lambda u: u.control_rss_peak_mb),
            says_capped=False,
        ),
        Row(
            "peak RSS, all processes, MB (W2)",
            "all RSS MB",
            narrow,
            usage(lambda u: u.total_rss_peak_mb),
            says_capped=False,
        ),
        Row(
            "CPU used outside the bench meanwhile, cores",
            "outside CPU",
            "*",
            usage(lambda u: round(u.outside_cores, 2)),
            ratio=False,
            says_capped=False,
        ),
        Row(
            "load average (1 min) at start",
            "load",
            "*",
            lambda m: m.load,
            ratio=False,
            says_capped=False,
            of_failures=True,
        ),
    ]
    return out


def number(x: float) -> str:
    """Three significant digits, trailing zeros dropped: 3.1, 19.5, 314, 2,000, 0.22."""
    if abs(x) >= 999.5:  # where three significant digits would turn into an exponent
        return f"{x:,.0f}"
    return f"{x:.3g}"


def span(values: Sequence[float], render: Callable[[float], str] = number) -> str:
    low, high = render(min(values)), render(max(values))
    return low if low == high else f"{low}{EN_DASH}{high}"


def _two_digits(x: float) -> str:
    return f"{x:.0f}" if x >= 99.5 else f"{float(f'{x:.2g}'):g}"


def times(x: float) -> str:
    """A ratio to two significant digits: 12x, 3.4x, 0.25x, 0.083x (with the sign for times)."""
    return _two_digits(x) + TIMES


def _failure_kind(m: Measurement) -> str:
    return (m.failure or "").split(":")[0]


def _good(row: Row, measurements: Sequence[Measurement]) -> list[tuple[Measurement, float]]:
    """The measurements that have the row's value, with it."""
    return [
        (m, v)
        for m in measurements
        if (m.failure is None or row.of_failures) and (v := row.value(m)) is not None
    ]


def cell(row: Row, measurements: Sequence[Measurement]) -> str:
    """The range of the row's value over `measurements`, saying what was capped or failed."""
    good = _good(row, measurements)
    kinds = [_failure_kind(m) for m in measurements if m.failure is not None]
    if not good:
        return ", ".join(sorted(set(kinds))) if kinds else "—"
    text = span([v for _, v in good])
    if not row.says_capped:
        return text
    capped = [m for m, _ in good if m.capped]
    if capped:
        sizes = [m.size for m in capped]
        text += f" (capped at {span(sizes, str)} of {capped[0].wanted:,})"
    if kinds:
        text += " (+" + ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds))) + ")"
    return text


def _medians(row: Row, measurements: Sequence[Measurement], per_unit: bool) -> dict[str, float]:
    """Per system: the median over rounds, of the value per unit of size if asked."""
    by_system: dict[str, list[float]] = {}
    for m, value in _good(row, measurements):
        by_system.setdefault(m.system, []).append(value / m.size if per_unit else value)
    return {system: statistics.median(values) for system, values in by_system.items()}


def ratio_cell(row: Row, ours: Sequence[Measurement], peer: Sequence[Measurement]) -> str:
    """Each of our configurations' median over the peer's median, as a range.

    When a size-dependent figure (seconds for N children) was capped on either side, both
    sides are compared per unit of size (per child, per level), marked with "~"."""
    if not row.ratio:
        return ""
    per_unit = row.extensive and any(m.capped for m, _ in _good(row, [*ours, *peer]))
    mine, theirs = _medians(row, ours, per_unit), _medians(row, peer, per_unit)
    if not mine or len(theirs) != 1 or not all(theirs.values()):
        return "—"
    (peer_value,) = theirs.values()
    ratios = [value / peer_value for value in mine.values()]
    return ("~" if per_unit else "") + span(ratios, _two_digits) + TIMES


def summary(measurements: Sequence[Measurement], sizes: Sizes) -> list[list[str]]:
    """The table: a header row, then one row per figure that has measurements."""
    present = {group_of(m.system) for m in measurements}
    groups = [g for g in GROUPS if g in present]
    ours = next((g for g in groups if g.startswith("Conveyor")), None)
    peers = [g for g in groups if not g.startswith("Conveyor")] if ours else []
    header = ["workload", *groups, *(f"{ours.split()[1]} ÷ {p.split()[0]}" for p in peers if ours)]
    table = [header]
    for row in rows(sizes):
        of = [m for m in measurements if row.workload in ("*", m.workload)]
        if not of:
            continue
        in_group = {g: [m for m in of if group_of(m.system) == g] for g in groups}
        cells = [cell(row, in_group[g]) for g in groups]
        ratios = [ratio_cell(row, in_group[ours], in_group[p]) for p in peers if ours]
        table.append([row.label, *cells, *ratios])
    return table


def markdown(table: Sequence[Sequence[str]]) -> str:
    """A Markdown table whose columns line up in a terminal too."""
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(table[0]), rule, *(line(cells) for cells in table[1:])])


def describe(m: Measurement) -> str:
    """One progress line's worth of a measurement."""
    if m.failure is not None:
        return m.failure
    metrics = m.metrics
    if "p50_ms" in metrics:
        text = f"p50 {number(metrics['p50_ms'])} ms, p99 {number(metrics['p99_ms'])} ms"
    elif "runs_per_s" in metrics:
        text = f"{number(metrics['runs_per_s'])} runs/s"
    elif "seconds" in metrics:
        text = f"{number(metrics['seconds'])} s"
    elif "ms_per_run" in metrics:
        text = f"{number(metrics['ms_per_run'])} ms/run"
    elif "all_running_s" in metrics:
        text = (
            f"all running in {number(metrics['all_running_s'])} s,"
            f" {number(metrics['pss_mb_per_run'])} MB each (PSS),"
            f" {number(metrics['descriptors'])} descriptors"
        )
    elif "checkpoint_ms" in metrics:
        text = (
            f"{number(metrics['checkpoint_ms'])} ms per checkpoint"
            f" (a step {number(metrics['flow_ms_per_step'])} ms,"
            f" a loop's call {number(metrics['loop_ms_per_step'])} ms)"
        )
    else:
        text = ", ".join(f"{k} {number(v)}" for k, v in metrics.items())
    if m.size and m.wanted:
        text += f" ({m.size:,} of {m.wanted:,})" if m.capped else f" ({m.size:,})"
    if m.usage is not None:
        u = m.usage
        text += (
            f"; CPU/run control {number(u.control_cpu_ms_per_run)} ms,"
            f" workers {number(u.worker_cpu_ms_per_run)} ms;"
            f" peak RSS {number(u.control_rss_peak_mb)}/{number(u.total_rss_peak_mb)} MB;"
            f" outside {u.outside_cores:.2f} cores"
        )
    return text + f"; load {m.load:.2f}"
