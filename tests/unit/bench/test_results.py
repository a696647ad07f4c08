"""Measurements survive JSON, and the document around the table carries machine and versions."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench.document import RunInfo, render
from bench.options import parse
from bench.results import Measurement, Usage, from_json, save


def test_measurements_round_trip_through_json(tmp_path: Path) -> None:
    measured = [
        Measurement(
            "rq", "W2@2", 1, {"runs_per_s": 80.0}, 2000, 2000, 1.1, Usage(4, 20, 70, 100, 0)
        ),
        Measurement("celery", "W4", 2, wanted=50, load=0.5, failure="timeout"),
    ]
    path = tmp_path / "raw.json"
    save(path, measured, {"command": "make bench"})
    saved = json.loads(path.read_text())
    assert saved["command"] == "make bench"
    assert from_json(saved["measurements"]) == measured
    assert measured[1].capped is False
    assert Measurement("rq", "W1", 1, {"p50_ms": 1.0}, size=5, wanted=200).capped


def test_the_document_has_the_table_failures_machine_and_versions() -> None:
    measured = [
        Measurement("rq", "W1", 1, {"p50_ms": 19.5, "p99_ms": 26.0}, 200, 200, 0.4),
        Measurement("celery", "W1", 1, wanted=200, load=0.4, failure="error: DriverError: x"),
    ]
    info = RunInfo("make bench", "2026-01-01 10:00", "2026-01-01 10:20", 20.0, "0.1", "1.9")
    text = render(measured, parse([]), info, {"CPU": "AMD EPYC, 2 logical CPUs"}, {"rq": "2.12.0"})
    assert re.search(r"\| W1 trigger→result p50, ms \(200 in a row\) +\| 19.5 ", text)
    assert "- round 1, celery, W1: error: DriverError: x" in text
    assert "- CPU: AMD EPYC, 2 logical CPUs" in text
    assert "- load average: 0.1 before, 1.9 after" in text
    assert "| rq        | 2.12.0  |" in text
