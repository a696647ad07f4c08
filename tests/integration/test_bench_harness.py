"""`make bench` in its quickest form against one Conveyor configuration, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]


@pytest.mark.slow
def test_the_harness_measures_conveyor_and_writes_its_report(tmp_path: Path) -> None:
    report = tmp_path / "RESULTS.md"
    argv = [sys.executable, "-m", "bench", "--quick", "--budget", "1.5"]
    argv += ["--systems", "conveyor/spawn/conveyor-sdk/sqlite", "--workloads", "W1,W2,W4"]
    argv += ["--output", str(report), "--work-dir", str(tmp_path / "work")]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not _processes_mentioning(str(tmp_path)), "the harness left processes behind"

    # one progress line per workload, then the table
    progress = [line for line in done.stdout.splitlines() if line.startswith("[1/1]")]
    assert [line.split()[2] for line in progress] == ["W1", "W2@2", "W4", "W2@20"]
    text = report.read_text()
    assert "| W1 trigger→result p50, ms (20 in a row)" in text
    assert "Conveyor spawn" in text
    assert "- CPU: " in text and "| Conveyor commit" in text

    (raw,) = (tmp_path / "work").glob("*/results.json")
    measured = {m["workload"]: m for m in json.loads(raw.read_text())["measurements"]}
    assert set(measured) == {"W1", "W2@2", "W2@20", "W4"}
    assert all(m["failure"] is None for m in measured.values()), measured
    w1, w2 = measured["W1"], measured["W2@2"]
    assert 0 < w1["metrics"]["p50_ms"] <= w1["metrics"]["p99_ms"]
    assert w2["metrics"]["runs_per_s"] > 0 and w2["size"] >= 10
    # the attempts are processes below the server: their CPU is the worker side's
    assert w2["usage"]["control_cpu_ms_per_run"] > 0
    assert w2["usage"]["worker_cpu_ms_per_run"] > 0
    assert measured["W4"]["size"] >= 3


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if entry.name.isdigit() and text in cmdline:
            found.append(cmdline)
    return found
