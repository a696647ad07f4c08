"""Tasks try, as an attacker would, to reach the control plane and other runs: every probe fails.

Real processes, sockets, namespaces and cgroups. The control plane runs in this process (root
in CI, so the sandbox gives each zygote and spawned instance a uid of its own); the regular-user
case is in `test_sandbox_unprivileged.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
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
