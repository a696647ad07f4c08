"""Celery under test: one worker with a prefork pool of `slots` processes, Redis in between."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from bench import processes
from bench.driver_client import Driver
from bench.options import REPO_ROOT
from bench.services import redis_url
from bench.systems import Kind
from bench.targets import Place, Running, clean_env


def peer_env(peer: str) -> dict[str, str]:
    return {**clean_env(), "BENCH_REDIS_URL": redis_url(peer), "PYTHONPATH": str(REPO_ROOT)}


async def flush_redis(venv: Path, peer: str, log: Path) -> None:
    """Empties the peer's own Redis database (and no other)."""
    code = "import redis, sys; redis.Redis.from_url(sys.argv[1]).flushdb()"
    argv = [str(venv / "bin" / "python"), "-c", code, redis_url(peer)]
    await processes.run_to_end(argv, peer_env(peer), log, timeout_s=30)


@asynccontextmanager
async def celery_worker(slots: int, place: Place) -> AsyncIterator[Running]:
    venv = place.venvs[Kind.CELERY]
    folder = place.folder(f"celery-{slots}")
    env = peer_env("celery")
    await flush_redis(venv, "celery", folder / "flush.log")
    async with AsyncExitStack() as stack:
        stack.push_async_callback(flush_redis, venv, "celery", folder / "flush.log")
        argv = [
            str(venv / "bin" / "celery"),
            "--app",
            "bench.peers.celery_app",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(slots),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        log = folder / "celery.log"
        worker = await processes.start(argv, env, log, cwd=REPO_ROOT)
        # SIGTERM: Celery's warm shutdown, which also ends the pool's processes
        stack.push_async_callback(processes.stop, worker, signal.SIGTERM)
        driver_argv = [str(venv / "bin" / "python"), "-m", "bench.drivers.celery_driver"]
        driver = await stack.enter_async_context(Driver(driver_argv, folder / "driver.log", env))
        yield Running((worker.pid,), driver)
