"""Conveyor under test: `conveyor dev` on SQLite or a fresh PostgreSQL database.

Only Conveyor's command line and REST API are used, so the harness measures whatever engine
the checkout holds. The executor's mode is chosen with `CONVEYOR_EXECUTOR__ZYGOTE` (`true`: a
warm fork server per workflow version; `false`: a fresh interpreter per attempt); an engine
that does not know the setting ignores it.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from bench import processes
from bench.driver_client import Driver
from bench.options import BENCH_DIR
from bench.postgres import Database, fresh_database
from bench.systems import System
from bench.targets import Place, Running, clean_env

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
WORKFLOW_SLUG = "bench"


def workflow_copy(system: System, folder: Path) -> Path:
    """A copy of the system's bench workflow: the server watches it and writes beside it."""
    source = BENCH_DIR / "workflows" / system.workflow_folder
    target = folder / WORKFLOW_SLUG
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def conveyor_env(system: System, database: Database | None, slots: int) -> dict[str, str]:
    env = clean_env()
    env["CONVEYOR_EXECUTOR__ZYGOTE"] = "true" if system.mode == "zygote" else "false"
    env["CONVEYOR_EXECUTOR__SANDBOX"] = "on" if system.sandbox else "off"
    env["CONVEYOR_LIMITS__MAX_CONCURRENCY"] = str(slots)
    if database is not None:
        env["CONVEYOR_DATABASE__URL"] = database.url
    return env


def dev_argv(system: System, workflow: Path, data_dir: Path, port: int, slots: int) -> list[str]:
    return [
        CONVEYOR,
        "dev",
        str(workflow),
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--start-command",
        system.start_command,
        "--max-concurrency",
        str(slots),
        "--name",
        WORKFLOW_SLUG,
    ]


def driver_argv(url: str, api_key: str | None = None) -> list[str]:
    argv = [sys.executable, "-m", "bench.drivers.conveyor_driver", "--url", url]
    return [*argv, "--api-key", api_key] if api_key else argv


@asynccontextmanager
async def maybe_database(system: System) -> AsyncIterator[Database | None]:
    if system.database != "postgres":
        yield None
        return
    async with fresh_database() as database:
        yield database


@asynccontextmanager
async def conveyor_dev(system: System, slots: int, place: Place) -> AsyncIterator[Running]:
    folder = place.folder(f"{system.name}-{slots}")
    workflow = workflow_copy(system, folder)
    async with AsyncExitStack() as stack:
        database = await stack.enter_async_context(maybe_database(system))
        port = processes.free_port()
        url = f"http://127.0.0.1:{port}"
        log = folder / "conveyor.log"
        process = await processes.start(
            dev_argv(system, workflow, folder / "data", port, slots),
            conveyor_env(system, database, slots),
            log,
        )
        stack.push_async_callback(processes.stop, process)
        await processes.wait_healthy(url, process, log)
        driver = await stack.enter_async_context(
            Driver(driver_argv(url), folder / "driver.log", clean_env())
        )
        yield Running((process.pid,), driver)
