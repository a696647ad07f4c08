"""The summary table: number formats, ranges over rounds, capped and failed cells, ratios."""

from __future__ import annotations

from bench.options import QUICK_SIZES, Sizes
from bench.report import (
    EN_DASH,
    TIMES,
    cell,
    describe,
    markdown,
    number,
    ratio_cell,
    rows,
    span,
    summary,
    times,
)
from bench.results import Measurement, Usage

D, X = EN_DASH, TIMES  # typeset, as the table prints them
ZYGOTE_SQLITE = "conveyor/zygote/conveyor-sdk/sqlite"
ZYGOTE_POSTGRES = "conveyor/zygote/render-sdk/postgres"


def w1(system: str, round: int, p50: float, size: int = 200) -> Measurement:
    return Measurement(
        system, "W1", round, {"p50_ms": p50, "p99_ms": 2 * p50}, size=size, wanted=200, load=0.5
    )


def test_numbers_keep_three_significant_digits() -> None:
    assert [number(x) for x in (3.14159, 19.52, 314.2, 0.2234, 0.005)] == [
        "3.14",
        "19.5",
        "314",
        "0.223",
        "0.005",
    ]
    assert number(2000) == "2,000"
    assert number(999.7) == "1,000"  # never an exponent
    assert number(5.4) == "5.4"


def test_ratios_keep_two_significant_digits() -> None:
    assert [times(x) for x in (12.3, 3.44, 0.25, 0.0833, 153.2)] == [
        f"12{X}",
        f"3.4{X}",
        f"0.25{X}",
        f"0.083{X}",
        f"153{X}",
    ]


def test_a_span_is_one_value_when_both_ends_print_alike() -> None:
    assert span([196.2, 264.4, 230.0]) == f"196{D}264"
    assert span([19.52, 19.54]) == "19.5"


def test_a_cell_is_the_range_over_rounds() -> None:
    p50 = rows(Sizes())[0]
    cells = [w1("rq", 1, 20.2), w1("rq", 2, 19.5), w1("rq", 3, 19.8)]
    assert cell(p50, cells) == f"19.5{D}20.2"


def test_a_capped_cell_says_how_many_were_measured() -> None:
    p50 = rows(Sizes())[0]
    measured = [w1(ZYGOTE_SQLITE, 1, 231, size=26), w1(ZYGOTE_SQLITE, 2, 245, size=31)]
    assert cell(p50, measured) == f"231{D}245 (capped at 26{D}31 of 200)"


def test_failures_are_counted_beside_the_figures_or_instead_of_them() -> None:
    p50 = rows(Sizes())[0]
    timeout = Measurement("rq", "W1", 3, wanted=200, failure="timeout")
    error = Measurement("rq", "W1", 2, wanted=200, failure="error: DriverError: boom")
    assert cell(p50, [w1("rq", 1, 20), timeout]) == "20 (+1 timeout)"
    assert cell(p50, [timeout, error]) == "error, timeout"
    assert cell(p50, []) == "—"


def test_a_ratio_divides_each_configuration_s_median_by_the_peer_s() -> None:
    p50 = rows(Sizes())[0]
    ours = [
        *(w1(ZYGOTE_SQLITE, r, v) for r, v in ((1, 190), (2, 200), (3, 400))),  # median 200
        *(w1(ZYGOTE_POSTGRES, r, v) for r, v in ((1, 300), (2, 310), (3, 290))),  # median 300
    ]
    peer = [w1("celery", r, v) for r, v in ((1, 4.0), (2, 5.0), (3, 3.0))]  # median 4
    assert ratio_cell(p50, ours, peer) == f"50{D}75{X}"


def test_a_capped_extensive_figure_is_compared_per_unit() -> None:
    fanout = next(r for r in rows(Sizes()) if r.workload == "W3/200")
    ours = [
        Measurement(ZYGOTE_SQLITE, "W3/200", 1, {"seconds": 8.0}, size=40, wanted=200),
        Measurement(ZYGOTE_SQLITE, "W3/200", 2, {"seconds": 8.8}, size=40, wanted=200),
    ]
    peer = [Measurement("rq", "W3/200", 1, {"seconds": 4.0}, size=200, wanted=200)]
    # 0.21 s per child against 0.02 s per child
    assert ratio_cell(fanout, ours, peer) == f"~10{X}"


def test_no_ratio_without_both_sides() -> None:
    p50 = rows(Sizes())[0]
    assert ratio_cell(p50, [w1(ZYGOTE_SQLITE, 1, 200)], []) == "—"
    failed = Measurement("rq", "W1", 1, wanted=200, failure="timeout")
    assert ratio_cell(p50, [w1(ZYGOTE_SQLITE, 1, 200)], [failed]) == "—"


def usage(control: float, worker: float) -> Usage:
    return Usage(control, worker, control_rss_peak_mb=80, total_rss_peak_mb=200, idle_processes=1)


def test_the_summary_has_a_column_per_system_group_and_per_peer_ratio() -> None:
    burst = [
        Measurement(ZYGOTE_SQLITE, "W2@2", 1, {"runs_per_s": 6.0}, 120, 2000, 1.2, usage(95, 180)),
        Measurement("rq", "W2@2", 1, {"runs_per_s": 80.0}, 2000, 2000, 1.1, usage(4, 20)),
        Measurement("celery", "W2@2", 1, {"runs_per_s": 400.0}, 2000, 2000, 0.9, usage(1, 2)),
    ]
    table = summary(burst, Sizes())
    assert table[0] == [
        "workload",
        "Conveyor zygote",
        "RQ (fork per job)",
        "Celery (prefork)",
        "zygote ÷ RQ",
        "zygote ÷ Celery",
    ]
    by_label = {line[0]: line[1:] for line in table[1:]}
    # rows without any measurement are left out
    assert not any(label.startswith(("W1", "W3", "W4", "W5")) for label in by_label)
    throughput = by_label["W2 2,000 no-op runs at once, runs/s (2 slots)"]
    assert throughput == ["6 (capped at 120 of 2,000)", "80", "400", f"0.075{X}", f"0.015{X}"]
    control = by_label["control-plane CPU per run, ms (W2, 2 slots)"]
    assert control == ["95", "4", "1", f"24{X}", f"95{X}"]  # no "capped" note on the CPU rows
    assert by_label["load average (1 min) at start"] == ["1.2", "1.1", "0.9", "", ""]


def test_the_w5_ratio_row_has_no_peer_ratio() -> None:
    ratio = Measurement(
        "conveyor/spawn/conveyor-sdk/postgres", "W5/ratio", 1, {"ratio": 1.42}, 20, 20
    )
    table = summary([ratio, w1("rq", 1, 20)], QUICK_SIZES)
    by_label = {line[0]: line[1:] for line in table[1:]}
    assert by_label["W5 10,000 ÷ 100 pending"] == ["1.42", "—", ""]


def test_markdown_columns_line_up() -> None:
    text = markdown([["a", "bb"], ["ccc", "d"]])
    lines = text.splitlines()
    assert lines == ["| a   | bb |", "|-----|----|", "| ccc | d  |"]


def test_a_progress_line_names_the_figure_and_its_cost() -> None:
    m = Measurement(ZYGOTE_SQLITE, "W2@2", 1, {"runs_per_s": 6.04}, 120, 2000, 1.25, usage(95, 180))
    assert describe(m) == (
        "6.04 runs/s (120 of 2,000); CPU/run control 95 ms, workers 180 ms;"
        " peak RSS 80/200 MB; outside 0.00 cores; load 1.25"
    )
    assert describe(Measurement("rq", "W4", 1, wanted=50, failure="timeout")) == "timeout"


def test_when_any_side_is_capped_every_configuration_is_compared_per_unit() -> None:
    chain = next(r for r in rows(Sizes()) if r.workload == "W4")
    ours = [
        Measurement(ZYGOTE_SQLITE, "W4", 1, {"seconds": 10.0}, size=50, wanted=50),  # 0.2 s/level
        Measurement(ZYGOTE_POSTGRES, "W4", 1, {"seconds": 4.0}, size=10, wanted=50),  # 0.4 s/level
    ]
    peer = [Measurement("rq", "W4", 1, {"seconds": 1.0}, size=50, wanted=50)]  # 0.02 s/level
    assert ratio_cell(chain, ours, peer) == f"~10{D}20{X}"
    assert ratio_cell(chain, ours[:1], peer) == f"10{X}"  # nothing capped: seconds against seconds


def test_the_load_row_counts_failed_workloads_too() -> None:
    load = next(r for r in rows(Sizes()) if r.label.startswith("load average"))
    failed = Measurement("rq", "W3/1000", 1, wanted=1000, load=3.5, failure="timeout")
    assert cell(load, [w1("rq", 1, 20), failed]) == f"0.5{D}3.5"
    cpu = next(r for r in rows(Sizes()) if r.label.startswith("control-plane CPU"))
    assert cell(cpu, [failed]) == "timeout"
