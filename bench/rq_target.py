"""RQ under test: `slots` worker processes, each forking a work horse per job, Redis between."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from bench import processes
from bench.celery_target import flush_redis, peer_env
from bench.driver_client import Driver
from bench.options import REPO_ROOT
from bench.services import redis_url
from bench.systems import Kind
from bench.targets import Place, Running


@asynccontextmanager
async def rq_workers(slots: int, place: Place) -> AsyncIterator[Running]:
    venv = place.venvs[Kind.RQ]
    folder = place.folder(f"rq-{slots}")
    env = peer_env("rq")
    await flush_redis(venv, "rq", folder / "flush.log")
    async with AsyncExitStack() as stack:
        stack.push_async_callback(flush_redis, venv, "rq", folder / "flush.log")
        workers = []
        for i in range(slots):
            argv = [str(venv / "bin" / "rq"), "worker", "--url", redis_url("rq"), "--quiet"]
            argv += ["--name", f"bench-{folder.name}-{i}", "bench"]
            worker = await processes.start(argv, env, folder / f"rq-{i}.log", cwd=REPO_ROOT)
            # SIGTERM: RQ's warm shutdown (the current job finishes)
            stack.push_async_callback(processes.stop, worker, signal.SIGTERM)
            workers.append(worker)
        driver_argv = [str(venv / "bin" / "python"), "-m", "bench.drivers.rq_driver"]
        driver = await stack.enter_async_context(Driver(driver_argv, folder / "driver.log", env))
        await _all_registered(driver, slots, folder.name)
        yield Running(tuple(w.pid for w in workers), driver)


async def _all_registered(driver: Driver, slots: int, label: str, deadline_s: float = 60) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_s
    while (await driver.call({"op": "workers"}, 10))["workers"] < slots:
        if loop.time() > until:
            raise processes.StartError(f"{label}: not all {slots} RQ workers registered in time")
        await asyncio.sleep(0.1)
