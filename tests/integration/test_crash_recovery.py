"""SIGKILL the control plane mid-flight; a new one on the same data dir finishes every run,
watching again the workers that outlived the first instead of running their bodies again."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scheduler.executors.zygote import ZYGOTE_FILE
from scheduler.sandbox.cgroups import Cgroups
from tests.integration.dev_server import dev_server
from tests.integration.engine_fixtures import PASS_SCRATCH_ENV, copy_workflow
from tests.integration.host_processes import find

pytestmark = pytest.mark.slow


def _wait_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _zygotes_of(pid: int) -> list[int]:
    """The zygote processes a control plane started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if ZYGOTE_FILE.encode() in cmdline and _parent_of(int(entry.name)) == pid:
                found.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def _cgroup_folders(attempt_id: str) -> list[Path]:
    """An attempt's cgroup folders (one per controller on cgroup v1, one on v2)."""
    root = Path("/sys/fs/cgroup")
    return [*root.glob(f"conveyor/{attempt_id}"), *root.glob(f"*/conveyor/{attempt_id}")]


def _start(url: str, task: str, input: object) -> str:
    response = httpx.post(f"{url}/v1/task-runs", json={"task": task, "input": input})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_runs_survive_a_killed_control_plane(tmp_path: Path, scratch: Path) -> None:
    workflow = copy_workflow("engine", tmp_path)
    data = tmp_path / "data"
    env = {
        "ENGINE_SCRATCH": str(scratch),
        "CONVEYOR_LIMITS__MIN_TIMEOUT_SECONDS": "1",
        **PASS_SCRATCH_ENV,
    }
    extra = ("--max-concurrency", "2")
    with dev_server(workflow, data, extra=extra, env=env) as first:
        holds = [_start(first.url, "wf/hold", [name]) for name in ("x", "y")]
        # host pids: the tasks report themselves as their own PID namespace numbers them
        orphans = [find(_wait_file(scratch / f"pid-{name}")) for name in ("x", "y")]
        queued = [_start(first.url, "wf/leaf", [n]) for n in range(4)]
        zygotes = _zygotes_of(first.process.pid)
        assert zygotes, "the workflow's zygote runs beside the control plane"
        # zygote → the task's process, born the first of its own PID namespace
        assert all(_parent_of(pid) in zygotes for pid in orphans), "workers forked from it"
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
    assert all(_alive(pid) for pid in orphans), "workers outlive a SIGKILLed control plane"
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in zygotes) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in zygotes), "no zygote outlives its control plane"
    for name in ("x", "y"):
        (scratch / f"pid-{name}").unlink()
        (scratch / f"release-{name}").write_text("go")

    with dev_server(workflow, data, extra=extra, env=env) as second:
        runs = {}
        for run_id in holds + queued:
            response = httpx.get(f"{second.url}/v1/task-runs/{run_id}?wait=30", timeout=40)
            runs[run_id] = response.json()
        for pid in orphans:
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(pid), "the workers it watches again end"
    for run_id in holds:
        run = runs[run_id]
        assert run["status"] == "succeeded", run
        assert run["results"][0].startswith("released")
        outcomes = [a["outcome"] for a in run["attempts"]]
        assert outcomes == ["ok"], "the surviving worker's result is accepted, not run again"
    for name in ("x", "y"):
        assert not (scratch / f"pid-{name}").exists(), "no body ran a second time"
    for n, run_id in enumerate(queued):
        run = runs[run_id]
        assert run["status"] == "succeeded", run
        assert run["results"] == [n + 1]
        assert [a["outcome"] for a in run["attempts"]] == ["ok"]


@dataclass
class Held:
    """A `wf/hold` run whose control plane was SIGKILLed while its worker held."""

    workflow: Path
    data: Path
    env: dict[str, str]
    run_id: str
    task: int  # the host pid of the task's process


def _held_then_killed(tmp_path: Path, scratch: Path, name: str) -> Held:
    if Cgroups.detect() is None:
        pytest.skip("this process may not make cgroups: attempts have none to be found in")
    workflow = copy_workflow("engine", tmp_path)
    data = tmp_path / "data"
    env = {
        "ENGINE_SCRATCH": str(scratch),
        "CONVEYOR_LIMITS__MIN_TIMEOUT_SECONDS": "1",
        **PASS_SCRATCH_ENV,
    }
    with dev_server(workflow, data, env=env) as first:
        run_id = _start(first.url, "wf/hold", [name])
        task = find(_wait_file(scratch / f"pid-{name}"))
        _wait_handle_stored(data, run_id)  # a moment after the start (the journal has it first)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
    return Held(workflow, data, env, run_id, task)


def _wait_handle_stored(data: Path, run_id: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(data / "conveyor.db") as db:
            row = db.execute("SELECT handle FROM attempts WHERE run_id = ?", (run_id,)).fetchone()
        if row is not None and row[0] is not None:
            return
        time.sleep(0.05)
    raise AssertionError(f"the handle of {run_id}'s attempt was never stored")


def _wait_gone(pids: list[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_what_is_left_of_a_lost_attempt_is_killed(tmp_path: Path, scratch: Path) -> None:
    # The stored handle no longer names the worker (its start time differs, as when its pid
    # was taken by another process): the attempt is lost and retried, and every process still
    # in its cgroup goes, though no handle leads to them.
    held = _held_then_killed(tmp_path, scratch, "z")
    with sqlite3.connect(held.data / "conveyor.db") as db:
        changed = db.execute(
            "UPDATE attempts SET handle = json_set(handle, '$.start_ticks', 1) WHERE run_id = ?",
            (held.run_id,),
        ).rowcount
    assert changed == 1
    (scratch / "pid-z").unlink()
    # the task's process is the attempt's only one (born the first of its PID namespace)
    assert _alive(held.task), "the worker outlived its control plane"

    with dev_server(held.workflow, held.data, env=held.env) as second:
        retried = find(_wait_file(scratch / "pid-z"))  # the attempt's retry
        _wait_gone([held.task])
        assert not _alive(held.task), "nothing of the lost attempt runs"
        assert retried != held.task
        (scratch / "release-z").write_text("go")
        run = httpx.get(f"{second.url}/v1/task-runs/{held.run_id}?wait=30", timeout=40).json()
    assert run["status"] == "succeeded", run
    assert [a["outcome"] for a in run["attempts"]] == ["lost", "ok"]


def test_a_worker_whose_handle_was_never_stored_is_found_and_watched_again(
    tmp_path: Path, scratch: Path
) -> None:
    # The control plane died between the fork and the handle's write, its journal lost too:
    # the worker is found in its attempt's cgroup, watched again, and its result taken.
    held = _held_then_killed(tmp_path, scratch, "w")
    with sqlite3.connect(held.data / "conveyor.db") as db:
        (attempt_id,) = db.execute(
            "SELECT id FROM attempts WHERE run_id = ?", (held.run_id,)
        ).fetchone()
        db.execute("UPDATE attempts SET handle = NULL WHERE id = ?", (attempt_id,))
    assert _cgroup_folders(attempt_id), "its cgroup holds it"
    journals = list(held.data.rglob("*.jsonl"))
    assert journals, "the control plane kept a journal"
    for journal in journals:
        journal.unlink()

    with dev_server(held.workflow, held.data, env=held.env) as second:
        (scratch / "release-w").write_text("go")
        run = httpx.get(f"{second.url}/v1/task-runs/{held.run_id}?wait=30", timeout=40).json()
        _wait_gone([held.task])
        assert not _alive(held.task)
    assert run["status"] == "succeeded", run
    assert run["results"] == ["released w"]
    assert [a["outcome"] for a in run["attempts"]] == ["ok"], "its body ran once"
    assert not _cgroup_folders(attempt_id), "removed at its end"


def test_a_worker_of_an_attempt_that_ended_is_killed_by_the_next_control_plane(
    tmp_path: Path, scratch: Path
) -> None:
    # Its result was recorded just before the control plane died, and the answer never reached
    # it: the worker waits on its socket for a control plane that will not serve it (the attempt
    # is no orphan). The next control plane kills what runs in an ended attempt's cgroup.
    held = _held_then_killed(tmp_path, scratch, "e")
    with sqlite3.connect(held.data / "conveyor.db") as db:
        db.execute(
            "UPDATE attempts SET state = 'ended', outcome = 'ok' WHERE run_id = ?",
            (held.run_id,),
        )
    assert _alive(held.task)
    with dev_server(held.workflow, held.data, env=held.env):
        _wait_gone([held.task])
        assert not _alive(held.task), "nothing of an ended attempt runs"
