"""Results survive JSON, and the document around the table carries machine and versions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.document import render
from bench.options import QUICK_SIZES, Sizes
from bench.results import Measurement, Record, RunInfo, Usage, load, save

DEFAULT_SIZES = Sizes()
RUN = RunInfo("make bench", "2026-01-01 10:00", "2026-01-01 10:20", 20.0, "0.1", "1.9")


def record(measurements: list[Measurement], sizes: Sizes = DEFAULT_SIZES) -> Record:
    machine = {"CPU": "AMD EPYC, 2 logical CPUs"}
    return Record(RUN, 3, 6.0, sizes, machine, {"rq": "2.12.0"}, measurements)


def test_a_record_round_trips_through_json(tmp_path: Path) -> None:
    usage = Usage(4, 20, 70, 100, 0, outside_cores=0.25)
    measured = [
        Measurement("rq", "W2@2", 1, {"runs_per_s": 80.0}, 2000, 2000, 1.1, usage),
        Measurement("celery", "W4", 2, wanted=10, load=0.5, failure="timeout"),
    ]
    path = tmp_path / "results.json"
    save(path, record(measured, QUICK_SIZES))
    assert load(path) == record(measured, QUICK_SIZES)


def test_measurements_saved_while_running_are_not_a_record(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    save(path, [Measurement("rq", "W1", 1, {"p50_ms": 1.0}, 200, 200)])
    with pytest.raises(ValueError, match="unfinished invocation"):
        load(path)


def test_capped_means_measured_fewer_than_wanted_without_failing() -> None:
    assert Measurement("rq", "W1", 1, {"p50_ms": 1.0}, size=5, wanted=200).capped
    assert not Measurement("rq", "W1", 1, {"p50_ms": 1.0}, size=200, wanted=200).capped
    assert not Measurement("rq", "W1", 1, wanted=200, failure="timeout").capped


def test_the_document_has_the_table_failures_machine_and_versions() -> None:
    measured = [
        Measurement("rq", "W1", 1, {"p50_ms": 19.5, "p99_ms": 26.0}, 200, 200, 0.4),
        Measurement("celery", "W1", 1, wanted=200, load=0.4, failure="error: DriverError: x"),
        Measurement("celery", "W3/1000", 1, wanted=1000, load=0.4, failure="skipped: capped"),
    ]
    text = render(record(measured))
    assert re.search(r"\| W1 trigger→result p50, ms \(200 in a row\) +\| 19.5 ", text)
    assert "- round 1, celery, W1: error: DriverError: x" in text
    assert "skipped: capped" not in text  # not a failure
    assert "- CPU: AMD EPYC, 2 logical CPUs" in text
    assert "- load average: 0.1 before, 1.9 after" in text
    assert "| rq        | 2.12.0  |" in text


def test_zygote_figures_without_a_waiting_process_are_flagged() -> None:
    def burst(system: str, idle: int) -> Measurement:
        usage = Usage(40, 90, 100, 150, idle_processes=idle)
        return Measurement(system, "W2@2", 1, {"runs_per_s": 10.0}, 60, 2000, 1.0, usage)

    spawned = render(record([burst("conveyor/zygote/conveyor-sdk/sqlite", 0)]))
    assert "this engine spawns every attempt" in spawned
    forked = render(record([burst("conveyor/zygote/conveyor-sdk/sqlite", 1)]))
    assert "spawns every attempt" not in forked
