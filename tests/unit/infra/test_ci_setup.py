"""The machine set-up steps (.ci/setup.d) wait for another apt instead of failing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CI = Path(__file__).resolve().parents[3] / ".ci"
STEPS = sorted((CI / "setup.d").glob("*.sh"))

# Stands in for apt-get: fails with apt's own lock message until `$LOCKED_TRIES` calls have
# been made, then succeeds; every call's arguments are appended to `$CALLS`.
FAKE_APT_GET = """#!/bin/bash
echo "$*" >>"$CALLS"
tries=$(wc -l <"$CALLS")
if [ "$tries" -le "$LOCKED_TRIES" ]; then
  echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 42 (apt-get)" >&2
  exit 100
fi
if [ -n "${FAIL_WITH:-}" ]; then echo "E: $FAIL_WITH" >&2; exit 100; fi
echo "done"
"""


def test_every_step_goes_through_the_waiting_apt_get() -> None:
    assert STEPS
    for step in STEPS:
        text = step.read_text()
        assert "apt-get" not in text.replace("apt_get", ""), f"{step.name} calls apt-get directly"
        if "apt_get" in text:
            assert 'source "$(dirname "${BASH_SOURCE[0]}")/../apt.sh"' in text, step.name


def run_apt_get(tmp_path: Path, locked_tries: int, **env: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "bin" / "apt-get"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(FAKE_APT_GET)
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    script = f'source {CI / "apt.sh"}; apt_get update -qq; echo "exit $?"'
    environment = {
        **os.environ,
        "PATH": f"{fake.parent}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "LOCKED_TRIES": str(locked_tries),
        **env,
    }
    return subprocess.run(
        ["bash", "-c", script], env=environment, capture_output=True, text=True, timeout=60
    )


def test_update_waits_for_the_lists_lock(tmp_path: Path) -> None:
    done = run_apt_get(tmp_path, locked_tries=2, APT_LOCK_POLL="0.05")
    assert done.stdout.splitlines() == ["done", "exit 0"]
    assert done.stderr.count("apt is busy") == 1  # said once, however long the wait
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["-o DPkg::Lock::Timeout=600 update -qq"] * 3


def test_other_failures_and_a_long_wait_fail(tmp_path: Path) -> None:
    broken = run_apt_get(tmp_path, locked_tries=0, FAIL_WITH="Unable to locate package nope")
    assert broken.stdout.splitlines() == ["exit 1"]
    assert "Unable to locate package nope" in broken.stderr
    given_up = run_apt_get(tmp_path, locked_tries=99, APT_LOCK_WAIT="0")
    assert given_up.stdout.splitlines() == ["exit 1"]
    assert "Could not get lock" in given_up.stderr
