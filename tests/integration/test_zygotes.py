"""Attempts forked from a warm zygote see what a spawned instance would see, at less cost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.db.models import Attempt
from core.domain import RunStatus
from scheduler.executors.local import LocalExecutor
from scheduler.executors.zygotes import ZygotePool
from scheduler.runtime import Runtime
from tests.integration.engine_fixtures import WS, executor_settings, open_engine, run_to_end
from tests.integration.host_processes import (
    HostProcess,
    alive,
    ancestors,
    find,
    host_process,
    reported,
)

pytestmark = pytest.mark.anyio

RENDER1 = "render-workflows main:app"
# what differs between any two attempts, however started
PER_ATTEMPT = {"CONVEYOR_TASK_RUN_ID", "RENDER_SDK_SOCKET_PATH"}


def zygotes_of(runtime: Runtime) -> ZygotePool:
    executor = runtime.executor
    assert isinstance(executor, LocalExecutor) and executor.zygotes is not None
    return executor.zygotes


async def results_of(runtime: Runtime, task: str, input: Any = ()) -> Any:
    run = await run_to_end(runtime, task, list(input))
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.results is not None
    return run.results[0]


async def until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
    assert condition(), what


@dataclass(frozen=True)
class Observed:
    """An attempt of a task that says which process it is and waits to be looked at."""

    result: Any  # what the task returned: what it saw from inside its sandbox
    process: HostProcess  # its process, as the host saw it while it ran
    parents: list[int]  # that process's parent, grandparent, great-grandparent on the host
    handle_pid: int  # the pid the executor's handle names (what it signals and waits for)

    @property
    def zygote(self) -> int:
        """The zygote that forked it: zygote → the task's process, born the first of its own
        PID namespace, the very process the handle names (no process waits in between)."""
        assert self.process.pid == self.handle_pid, "the task runs in the handle's process"
        return self.parents[0]

    @property
    def spawner(self) -> int:
        """What spawned it: spawner → the launcher (the handle's, which waits) → an init
        (the first of the instance's PID namespace) → the task's process."""
        assert self.parents[1] == self.handle_pid, "the task runs under the handle's launcher"
        return self.parents[2]


async def handle_pid_of(runtime: Runtime, run_id: str) -> int:
    async with asyncio.timeout(30):
        while True:
            async with runtime.store.sessions() as session:
                attempt = await session.scalar(select(Attempt).where(Attempt.run_id == run_id))
            if attempt is not None and attempt.handle:
                return int(json.loads(attempt.handle)["pid"])
            await asyncio.sleep(0.02)


async def observe(runtime: Runtime, scratch: Path, task: str = "wf/process_facts") -> Observed:
    """Runs `task` (it takes a name, reports `process-NAME`, waits for `release-NAME`)."""
    name = uuid.uuid4().hex
    run = await runtime.service.create_run(WS, task, [name])
    pid = find(await reported(scratch / f"process-{name}"))
    process, parents = host_process(pid), ancestors(pid, 3)
    handle_pid = await handle_pid_of(runtime, run.id)
    (scratch / f"release-{name}").touch()
    done = await runtime.service.wait_run(WS, run.id, 60)
    assert done.status is RunStatus.SUCCEEDED, done.error
    assert done.results is not None
    return Observed(done.results[0], process, parents, handle_pid)


async def test_attempts_fork_from_the_zygote_and_see_what_a_spawned_instance_sees(
    tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path / "spawned", executor=executor_settings(zygote=False)) as rt:
        spawned = await observe(rt, scratch)
        spawned_env = await results_of(rt, "wf/environment")
    async with open_engine(tmp_path / "forked") as runtime:
        (zygote,) = await zygotes_of(runtime).ready_pids()
        forked = await observe(runtime, scratch)
        forked_env = await results_of(runtime, "wf/environment")
    assert forked.zygote == zygote, "forked from the version's zygote"
    assert spawned.spawner == os.getpid(), "spawned by the control plane"
    # seen from inside: the first process of its own PID namespace, leading its own session
    # and group (forked); or the child of the namespace's init, whose session and group are led
    # from outside it (spawned)
    assert (forked.result["pid"], forked.result["ppid"]) == (1, 0)
    assert forked.result["pgid"] == forked.result["sid"] == 1
    assert (spawned.result["pid"], spawned.result["ppid"]) == (2, 1)
    assert spawned.result["pgid"] == spawned.result["sid"] == 0
    for observed, root in ((spawned, tmp_path / "spawned"), (forked, tmp_path / "forked")):
        facts = observed.result
        process = observed.process
        assert process.pgid == process.sid == observed.handle_pid, "its own session and group"
        assert facts["argv"][1:] == ["main:app"]
        assert Path(facts["argv"][0]).name == "conveyor-worker"
        assert facts["main_file"] == facts["argv"][0]
        assert facts["cwd"] == facts["path0"] == str(root / "engine")
        assert facts["stdin"] == "/dev/null"
        assert facts["stdout"].endswith("/0.log")

    def same(env: dict[str, str]) -> dict[str, str]:
        return {
            k: v
            for k, v in env.items()
            if k not in PER_ATTEMPT and "/spawned/" not in v and "/forked/" not in v
        }

    assert same(forked_env) == same(spawned_env)
    assert set(forked_env) == set(spawned_env)


async def test_the_zygote_is_ready_before_the_first_attempt_and_started_again_if_it_dies(
    tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path) as runtime:
        pool = zygotes_of(runtime)
        (first,) = await pool.ready_pids()  # started when the version became active
        assert (await observe(runtime, scratch)).zygote == first
        os.kill(first, signal.SIGKILL)
        await until(lambda: not alive(first), "the zygote to die")
        assert await results_of(runtime, "wf/leaf", [1]) == 2
        (second,) = await pool.ready_pids()
        assert second != first
        assert (await observe(runtime, scratch)).zygote == second


async def test_a_new_version_forks_from_a_zygote_with_its_own_code(
    tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path) as runtime:
        pool = zygotes_of(runtime)
        assert await results_of(runtime, "wf/leaf", [1]) == 2
        (old,) = await pool.ready_pids()
        main = tmp_path / "engine" / "main.py"
        main.write_text(main.read_text().replace("return n + 1", "return n + 100"))
        version = await runtime.register_workflow(
            tmp_path / "engine", slug="wf", start_command="conveyor-worker main:app"
        )
        assert version.status.value == "ready", version.message
        assert await results_of(runtime, "wf/leaf", [1]) == 101
        zygote = (await observe(runtime, scratch)).zygote
        assert zygote in await pool.ready_pids()
        assert zygote != old


async def test_render_sdk_workers_fork_from_a_zygote_too(tmp_path: Path) -> None:
    async with open_engine(tmp_path, "render1", start_command=RENDER1) as runtime:
        (zygote,) = await zygotes_of(runtime).ready_pids()
        run = await run_to_end(runtime, "wf/square", [7])
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert run.results == [49]
        logs = (tmp_path / "data" / "zygotes").glob("*.log")
        assert all(not path.read_text() for path in logs), "the zygote reported no error"
        assert zygote in zygotes_of(runtime).pids


async def test_an_entry_point_that_starts_threads_at_import_is_spawned(
    tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, "threads") as runtime:
        assert await zygotes_of(runtime).ready_pids() == []
        observed = await observe(runtime, scratch, "wf/which_process")
    assert observed.spawner == os.getpid()
    assert observed.result == 1, "its parent is its namespace's init"


async def test_other_start_commands_are_spawned(tmp_path: Path, scratch: Path) -> None:
    command = "python -c 'from conveyor._worker_cli import main; main()' main:app"
    async with open_engine(tmp_path, start_command=command) as runtime:
        assert await zygotes_of(runtime).ready_pids() == []
        assert (await observe(runtime, scratch)).spawner == os.getpid()


async def test_a_forked_attempt_gets_the_plans_memory_limit(tmp_path: Path, scratch: Path) -> None:
    async with open_engine(tmp_path) as runtime:
        assert await results_of(runtime, "wf/allocate", [64]) == 64
        run = await run_to_end(runtime, "wf/allocate", [1024])  # the starter plan has 512 MB
        assert run.status is RunStatus.FAILED
        assert (await observe(runtime, scratch)).zygote in zygotes_of(runtime).pids


async def test_an_idle_zygote_is_closed(tmp_path: Path, scratch: Path) -> None:
    executor = executor_settings(zygote_idle_seconds=0.3)
    async with open_engine(tmp_path, executor=executor) as runtime:
        pool = zygotes_of(runtime)
        # the zygote that forked this attempt (whether started ahead of need or for it)
        zygote = (await observe(runtime, scratch)).zygote
        assert zygote != os.getpid(), "forked from a zygote, not spawned"
        await until(lambda: not alive(zygote) and zygote not in pool.pids, "the zygote to close")
        # the next attempt starts another
        again = (await observe(runtime, scratch)).zygote
        assert again not in (zygote, os.getpid())
