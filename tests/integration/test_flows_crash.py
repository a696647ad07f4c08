"""SIGKILL the control plane in the middle of a flow's step: a new one on the same data dir
finishes the flow; no completed step runs again."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.dev_server import dev_server
from tests.integration.engine_fixtures import PASS_SCRATCH_ENV, copy_workflow

pytestmark = pytest.mark.slow


def _runs(scratch: Path, name: str) -> int:
    path = scratch / f"{name}.ran"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_flow_survives_a_killed_control_plane(tmp_path: Path, scratch: Path) -> None:
    workflow = copy_workflow("flows", tmp_path)
    data = tmp_path / "data"
    env = {"ENGINE_SCRATCH": str(scratch), **PASS_SCRATCH_ENV}
    with dev_server(workflow, data, name="wf", env=env) as first:
        response = httpx.post(
            f"{first.url}/v1/flow-runs", json={"flow": "wf/waits_for_release", "input": [1]}
        )
        assert response.status_code == 202, response.text
        run_id = response.json()["id"]
        deadline = time.monotonic() + 30
        while not (scratch / "held.waiting").exists():
            assert time.monotonic() < deadline, first.output()
            time.sleep(0.05)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
    (scratch / "release").touch()

    with dev_server(workflow, data, name="wf", env=env) as second:
        deadline = time.monotonic() + 60
        while True:
            run = httpx.get(f"{second.url}/v1/flow-runs/{run_id}").json()
            if run["status"] in ("succeeded", "failed", "canceled"):
                break
            assert time.monotonic() < deadline, (run, second.output())
            time.sleep(0.1)
        steps = httpx.get(f"{second.url}/v1/flow-runs/{run_id}/steps").json()
    assert run["status"] == "succeeded", run
    assert run["results"] == [5]  # ((1 + 1) * 3) - 1
    # the worker outlived the control plane and was watched again: one attempt, each step once
    assert [a["status"] for a in run["attempts"]] == ["succeeded"]
    assert (_runs(scratch, "first"), _runs(scratch, "held"), _runs(scratch, "last")) == (1, 1, 1)
    assert [(s["step"]["name"], s["step"]["status"]) for s in steps] == [
        ("first", "succeeded"),
        ("held", "succeeded"),
        ("last", "succeeded"),
    ]
