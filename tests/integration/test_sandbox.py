"""Tasks try, as an attacker would, to reach the control plane and other runs: every probe fails.

Real processes, sockets, namespaces and cgroups. The control plane runs in this process (root
in CI, so the sandbox gives each zygote and spawned instance a uid of its own); the regular-user
case is in `test_sandbox_unprivileged.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.db.models import Attempt
from core.domain import RunStatus
from core.settings import Settings
from scheduler.runtime import Runtime
from tests.integration.engine_fixtures import WS, executor_settings, open_engine, run_to_end

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(os.geteuid() != 0, reason="the control plane runs as root here"),
]

KINDS = {"forked": executor_settings(), "spawned": executor_settings(zygote=False)}


async def attempt_of(runtime: Runtime, run_id: str) -> Attempt:
    async with asyncio.timeout(30):
        while True:
            async with runtime.store.sessions() as session:
                attempt = await session.scalar(select(Attempt).where(Attempt.run_id == run_id))
            if attempt is not None and attempt.handle:
                return attempt
            await asyncio.sleep(0.02)


async def results_of(runtime: Runtime, task: str, *args: Any) -> Any:
    run = await run_to_end(runtime, task, list(args))
    assert run.status is RunStatus.SUCCEEDED, run.error
    return run.results[0] if run.results else None


@pytest.mark.parametrize("kind", KINDS)
async def test_a_task_reaches_neither_the_control_plane_nor_another_run(
    tmp_path: Path, kind: str
) -> None:
    async with open_engine(tmp_path, "sandbox", executor=KINDS[kind]) as runtime:
        settings: Settings = runtime.settings
        victim = await runtime.service.create_run(WS, "wf/hold", [30])
        victim_attempt = await attempt_of(runtime, victim.id)
        targets = {
            "server_pid": str(os.getpid()),
            "data_dir": str(settings.data_dir.resolve()),
            "victim_socket": json.loads(victim_attempt.handle or "{}")["socket"],
        }
        facts = await results_of(runtime, "wf/probe", targets)
        await runtime.service.cancel_run(WS, victim.id)
        attacker_uid = int(facts.pop("uid"))
    refused = {
        name: outcome for name, outcome in facts.items() if name not in ("write_tmp", "own_socket")
    }
    refused.pop("processes")
    allowed = {n: o for n, o in refused.items() if not o.startswith("refused")}
    assert not allowed, allowed
    assert facts["write_tmp"].startswith("allowed"), facts["write_tmp"]
    assert facts["own_socket"].startswith("allowed"), facts["own_socket"]
    # its own PID namespace: its own process (1) and nothing of the host's
    assert facts["processes"] in ("allowed: [1]", "allowed: [1, 2]"), facts["processes"]
    assert attacker_uid >= settings.sandbox.uid_base, "not the control plane's uid"
    assert attacker_uid != os.getuid()


def cgroup_file(controller: str, attempt_id: str, name: str) -> str:
    return Path(f"/sys/fs/cgroup/{controller}/conveyor/{attempt_id}/{name}").read_text().strip()


needs_v1_cgroups = pytest.mark.skipif(
    not Path("/sys/fs/cgroup/memory/conveyor").is_dir(),
    reason="the cpu, memory and pids cgroup v1 hierarchies of this machine",
)


@needs_v1_cgroups
async def test_an_attempt_s_cgroup_holds_its_plan_s_limits(tmp_path: Path) -> None:
    async with open_engine(tmp_path, "sandbox") as runtime:
        run = await runtime.service.create_run(WS, "wf/burn_starter", [2.0])
        attempt = await attempt_of(runtime, run.id)
        handle = json.loads(attempt.handle or "{}")
        assert cgroup_file("cpu", attempt.id, "cpu.cfs_quota_us") == "50000"
        assert cgroup_file("cpu", attempt.id, "cpu.cfs_period_us") == "100000"
        assert cgroup_file("memory", attempt.id, "memory.limit_in_bytes") == "536870912"
        assert cgroup_file("pids", attempt.id, "pids.max") == "512"
        members = cgroup_file("pids", attempt.id, "cgroup.procs").split()
        assert str(handle["pid"]) in members, "the attempt's process joined before its code ran"
        done = await runtime.service.wait_run(WS, run.id, 30)
        assert done.status is RunStatus.SUCCEEDED
    assert not Path(f"/sys/fs/cgroup/cpu/conveyor/{attempt.id}").exists(), "removed at its end"


async def cpu_stats_while_running(runtime: Runtime, task: str) -> tuple[float, dict[str, int]]:
    """The share of a core the task got, and its cgroup's last `cpu.stat` while it ran."""
    run = await runtime.service.create_run(WS, task, [3.0])
    attempt = await attempt_of(runtime, run.id)
    stats: dict[str, int] = {}
    while not (await runtime.service.get_run(WS, run.id)).status.terminal:
        with contextlib.suppress(FileNotFoundError):
            text = cgroup_file("cpu", attempt.id, "cpu.stat")
            stats = {k: int(v) for k, v in (line.split() for line in text.splitlines())}
        await asyncio.sleep(0.1)
    done = await runtime.service.get_run(WS, run.id)
    assert done.status is RunStatus.SUCCEEDED, done.error
    assert done.results is not None
    return float(done.results[0]), stats


@needs_v1_cgroups
@pytest.mark.slow
async def test_a_starter_task_gets_half_a_core_and_a_pro_task_a_whole_one(tmp_path: Path) -> None:
    async with open_engine(tmp_path, "sandbox") as runtime:
        starter, starter_stats = await cpu_stats_while_running(runtime, "wf/burn_starter")
        pro, pro_stats = await cpu_stats_while_running(runtime, "wf/burn_pro")
    # a quota of 50 ms each 100 ms: never above half a core; held back whenever the machine
    # would have given it more (on a busy machine it may not reach its quota at all)
    assert starter <= 0.6, starter
    assert starter_stats["nr_periods"] > 0, starter_stats
    if starter >= 0.45:
        assert starter_stats["nr_throttled"] > 0, starter_stats
    # a quota of two cores: one busy thread is never held back (what it gets is the machine's)
    assert pro_stats["nr_periods"] > 0 and pro_stats["nr_throttled"] == 0, pro_stats
    assert 0 < pro <= 1.05, pro


@pytest.mark.parametrize("kind", KINDS)
async def test_a_starter_task_allocating_a_gigabyte_fails_naming_its_limit(
    tmp_path: Path, kind: str
) -> None:
    async with open_engine(tmp_path, "sandbox", executor=KINDS[kind]) as runtime:
        assert await results_of(runtime, "wf/allocate", 64) == 64
        run = await run_to_end(runtime, "wf/allocate", [1024])
    assert run.status is RunStatus.FAILED
    assert run.error is not None and "512 MB" in run.error, run.error


@needs_v1_cgroups
async def test_a_fork_bomb_stops_at_the_pids_limit(tmp_path: Path) -> None:
    async with open_engine(tmp_path, "sandbox") as runtime:
        forked = await results_of(runtime, "wf/fork_bomb", 2000)
        # the machine still answers: another run goes through at once
        assert await results_of(runtime, "wf/hold", 0) == "held"
    # 512 processes and threads in all: the task's own process and threads take a few
    assert 480 <= forked < 512, forked


async def test_the_zygote_still_forks_each_attempt(tmp_path: Path) -> None:
    async with open_engine(tmp_path, "sandbox") as runtime:
        pool = runtime.executor.zygotes  # type: ignore[attr-defined]
        (zygote,) = await pool.ready_pids()
        parents = []
        for _ in range(2):
            run = await runtime.service.create_run(WS, "wf/hold", [5])
            handle = json.loads((await attempt_of(runtime, run.id)).handle or "{}")
            stat = Path(f"/proc/{handle['pid']}/stat").read_text()
            parents.append(int(stat[stat.rindex(")") + 2 :].split()[1]))
            await runtime.service.cancel_run(WS, run.id)
    assert parents == [zygote, zygote]


async def test_an_instance_socket_answers_only_its_own_processes(tmp_path: Path) -> None:
    request = "GET /input HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    client = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect(sys.argv[1])\n"
        f"s.sendall({request!r}.encode())\n"
        "sys.stdout.write(s.recv(4096).decode())\n"
    )
    async with open_engine(tmp_path, "sandbox") as runtime:
        run = await runtime.service.create_run(WS, "wf/hold", [30])
        handle = json.loads((await attempt_of(runtime, run.id)).handle or "{}")
        # a process of the host (root, even), but not of the instance's session
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", client, handle["socket"], stdout=asyncio.subprocess.PIPE
        )
        answer, _ = await process.communicate()
        await runtime.service.cancel_run(WS, run.id)
    assert answer.startswith(b"HTTP/1.1 403"), answer
    assert b"this socket belongs to another instance" in answer
