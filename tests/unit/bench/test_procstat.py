"""CPU of a process tree from /proc: reaped children are counted, the control plane apart."""

from __future__ import annotations

import os
import subprocess
import sys

from bench import outside, procstat

BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"


def test_a_reaped_child_s_cpu_moves_to_the_tree_not_to_the_control_plane() -> None:
    me = os.getpid()
    before = procstat.sample([me])
    subprocess.run([sys.executable, "-c", BURN], check=True)  # started, burnt, reaped
    after = procstat.sample([me])
    child_s = (after.total_cpu_s - before.total_cpu_s) - (
        after.control_cpu_s - before.control_cpu_s
    )
    assert child_s >= 0.25
    assert after.below == before.below


def test_live_descendants_are_found_and_counted() -> None:
    me = os.getpid()
    with subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    ) as child:
        try:
            tree = procstat.sample([me])
            assert child.pid in procstat.descendants(procstat.all_stats(), [me])
            assert tree.below >= 1
            assert tree.total_rss_mb > tree.control_rss_mb > 0
        finally:
            assert child.stdin is not None
            child.stdin.close()


def test_a_missing_process_reads_as_none() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert procstat.read_stat(int(done.stdout)) is None


def test_outside_cpu_is_the_machine_s_less_the_bench_s_and_the_services() -> None:
    before = outside.MachineSample(at=100.0, busy_s=50.0, ours_s=20.0)
    after = outside.MachineSample(at=102.0, busy_s=54.0, ours_s=22.5)
    assert outside.outside_cores(before, after) == 0.75  # (4 - 2.5) s over 2 s
    now = outside.machine_sample()
    assert now.busy_s > 0 and now.ours_s > 0
