"""Chaos: the control plane is SIGKILLed and restarted while runs go on, and workers are killed.

Every run must end, none may be lost or end with two results, usage must add up to the attempts,
and a body whose worker survived must not run twice: a restarted control plane watches the
surviving workers again and accepts their results.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.integration.dev_server import dev_server
from tests.integration.engine_fixtures import PASS_SCRATCH_ENV, copy_workflow
from tests.integration.host_processes import find

pytestmark = pytest.mark.slow

ROOTS = 300
RESTARTS = 5
WORKER_KILLS = 5
SEED = 20261130


def _start(client: httpx.Client, url: str, task: str, input: list[object]) -> str:
    response = client.post(f"{url}/v1/task-runs", json={"task": task, "input": input})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _kill_a_worker(scratch: Path, rng: random.Random, killed: set[str]) -> None:
    """SIGKILL a running task process (one that said which it is and still runs)."""
    processes = sorted(p.name for p in (scratch / "pids").glob("*") if p.name not in killed)
    rng.shuffle(processes)
    for process in processes:
        try:
            os.kill(find(process), signal.SIGKILL)
        except (LookupError, ProcessLookupError):
            continue  # it ended
        killed.add(process)
        return


def _all_runs(client: httpx.Client, url: str) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"{url}/v1/task-runs", params=params).json()
        runs += [item["taskRun"] for item in page]
        if len(page) < 100:
            return runs
        cursor = page[-1]["cursor"]


def _wait_until_done(client: httpx.Client, url: str, timeout: float) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        runs = _all_runs(client, url)
        unfinished = [r for r in runs if r["status"] in ("pending", "running")]
        if not unfinished:
            return runs
        assert time.monotonic() < deadline, f"{len(unfinished)} runs never ended"
        time.sleep(0.5)


def _bodies_run_again(client: httpx.Client, url: str, scratch: Path, killed: set[str]) -> list[str]:
    """Runs whose body ran again after an attempt lost with a control plane while its worker
    lived on (a worker killed on purpose does not count)."""
    starts: dict[str, list[tuple[int, str]]] = {}
    for line in (scratch / "bodies.log").read_text().splitlines():
        run_id, attempt, process = line.split()
        starts.setdefault(run_id, []).append((int(attempt), process))
    again = []
    for run_id, bodies in starts.items():
        if len(bodies) < 2:
            continue
        attempts = client.get(f"{url}/v1/task-runs/{run_id}").json()["attempts"]
        outcomes = {a["attempt"]: a.get("outcome") for a in attempts}
        if any(outcomes.get(n) == "lost" and process not in killed for n, process in bodies):
            described = [(a["attempt"], a.get("outcome"), a.get("error")) for a in attempts]
            again.append(f"{run_id}: bodies {bodies}, attempts {described}")
    return again


def _workers_left(data: Path, timeout: float = 10) -> list[int]:
    """Processes still writing to an attempt's log under `data`, once given time to end."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and os.readlink(entry / "fd" / "1").startswith(str(data)):
                    left.append(int(entry.name))
            except OSError:
                continue
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _described(pids: list[int], data: Path) -> list[str]:
    """Each process, and what the database says of the attempts of the run it writes for."""
    described = []
    for pid in pids:
        try:
            log = os.readlink(f"/proc/{pid}/fd/1")
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            described.append(f"{pid} (gone)")
            continue
        with sqlite3.connect(data / "conveyor.db") as db:
            attempts = db.execute(
                "SELECT number, state, outcome, error, handle FROM attempts"
                " WHERE run_id = ? ORDER BY number",
                (Path(log).parent.name,),
            ).fetchall()
        described.append(f"{pid} (state {stat[0]}, parent {stat[1]}) writing {log}: {attempts}")
    return described


def _submit(client: httpx.Client, url: str, rng: random.Random) -> list[str]:
    """Leaves with random lengths, fan-outs of three, and tasks whose first attempt fails."""
    roots = []
    for n in range(ROOTS):
        kind = n % 10
        if kind < 6:
            roots.append(_start(client, url, "wf/leaf", [n, rng.uniform(0, 0.3)]))
        elif kind < 8:
            roots.append(_start(client, url, "wf/fan", [3]))
        else:
            roots.append(_start(client, url, "wf/flaky", [n]))
    return roots


def test_runs_survive_control_plane_and_worker_kills(tmp_path: Path, scratch: Path) -> None:
    rng = random.Random(SEED)
    # every body adds to these, whatever uid its sandbox runs it as
    (scratch / "bodies.log").touch(mode=0o666)
    (scratch / "bodies.log").chmod(0o666)
    (scratch / "pids").mkdir(mode=0o1777)
    (scratch / "pids").chmod(0o1777)
    workflow = copy_workflow("chaos", tmp_path)
    data = tmp_path / "data"
    env = {"ENGINE_SCRATCH": str(scratch), **PASS_SCRATCH_ENV}
    extra = ("--max-concurrency", "8")
    killed: set[str] = set()  # the processes, as they named themselves
    with httpx.Client(timeout=60) as client:
        for life in range(RESTARTS + 1):
            with dev_server(workflow, data, extra=extra, env=env) as server:
                if life == 0:
                    roots = _submit(client, server.url, rng)
                time.sleep(rng.uniform(0.5, 2.0))
                if life < WORKER_KILLS:
                    _kill_a_worker(scratch, rng, killed)
                if life < RESTARTS:  # killed at a random moment; the next one takes over
                    server.process.send_signal(signal.SIGKILL)
                    server.process.wait(timeout=10)
                    continue
                runs = _wait_until_done(client, server.url, timeout=240)
                usage = client.get(f"{server.url}/v1/usage").json()
                twice = _bodies_run_again(client, server.url, scratch, killed)
    left = _workers_left(data)
    assert not left, f"no worker outlives the runs (none is forgotten): {_described(left, data)}"
    by_id = {str(r["id"]): r for r in runs}
    assert set(roots) <= set(by_id), "no run is lost"
    statuses = Counter(str(r["status"]) for r in runs)
    attempts = [a for r in runs for a in r["attempts"]]  # type: ignore[attr-defined]
    ok_per_run = Counter(
        str(r["id"])
        for r in runs
        for a in r["attempts"]  # type: ignore[attr-defined]
        if a["status"] == "succeeded"
    )
    assert all(count == 1 for count in ok_per_run.values()), "no run has two results"
    assert all(by_id[run_id]["status"] == "succeeded" for run_id in roots), statuses
    # a parent attempt that fails takes its children with it; its retry starts new ones
    assert set(statuses) <= {"succeeded", "canceled"}, statuses
    assert all(r["parentTaskRunId"] for r in runs if r["status"] == "canceled")
    assert sum(t["attempts"] for t in usage["perTask"]) == len(attempts)

    print(
        f"chaos: {len(runs)} runs, {len(attempts)} attempts, {RESTARTS + 1} control planes "
        f"killed, {len(killed)} workers killed; bodies run twice with their worker alive: "
        f"{len(twice)}"
    )
    assert twice == []
