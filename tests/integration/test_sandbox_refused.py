"""Where the kernel refuses the sandbox, a control plane with a process executor refuses to
start unless the sandbox is turned off on purpose; `conveyor dev` starts, saying so.

The refusal is real: the processes run in a user namespace whose limit of nested user
namespaces is 0 (`user.max_user_namespaces`, a per-namespace limit its owner may lower), as in
an unprivileged container that forbids them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.dev_server import wait_healthy
from tests.integration.engine_fixtures import WORKFLOWS

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
NO_NAMESPACES = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"'

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux")


def confined(*argv: str) -> list[str]:
    """`argv`, run where no further user namespace may be made."""
    return ["unshare", "--user", "--map-root-user", "sh", "-c", NO_NAMESPACES, "sh", *argv]


def test_a_scheduler_refuses_to_start_without_its_sandbox(tmp_path: Path) -> None:
    env = {**os.environ, "CONVEYOR_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        confined(CONVEYOR, "scheduler"), env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: the kernel refuses the task sandbox here ("), lines
    assert "set CONVEYOR_EXECUTOR__SANDBOX=off on purpose" in lines[-1]


def test_a_scheduler_with_the_sandbox_off_on_purpose_starts_and_warns(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CONVEYOR_DATA_DIR": str(tmp_path / "data"),
        "CONVEYOR_EXECUTOR__SANDBOX": "off",
    }
    log = tmp_path / "scheduler.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            confined(CONVEYOR, "scheduler"), env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "running" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        output = log.read_text()
        assert "Conveyor scheduler" in output and "running" in output, output
        assert "the sandbox is off (CONVEYOR_EXECUTOR__SANDBOX=off)" in output
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_conveyor_dev_starts_without_the_sandbox_and_says_so(tmp_path: Path) -> None:
    workflow = shutil.copytree(WORKFLOWS / "sandbox", tmp_path / "wf")
    argv = [CONVEYOR, "dev", str(workflow), "--port", "0", "--name", "wf"]
    argv += ["--data-dir", str(tmp_path / "data")]
    log = tmp_path / "dev.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(confined(*argv), stdout=sink, stderr=subprocess.STDOUT)
    try:
        url = wait_healthy(process, log)
        created = httpx.post(
            f"{url}/v1/task-runs",
            json={"task": "wf/hold", "input": [0]},
            headers={"Content-Type": "application/json"},
        )
        assert created.status_code == 202, created.text
        run = httpx.get(f"{url}/v1/task-runs/{created.json()['id']}?wait=30", timeout=40).json()
        assert run["status"] == "succeeded", run
        warnings = [line for line in log.read_text().splitlines() if "WITHOUT a sandbox" in line]
        assert len(warnings) == 1, log.read_text()
        assert "the kernel refuses it here" in warnings[0]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
