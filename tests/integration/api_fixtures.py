"""A real engine on a temporary data dir, served by uvicorn on 127.0.0.1 in a thread."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.types import ASGIApp

from app.server import create_app
from core.build_settings import BuildSettings
from core.domain import VersionStatus
from core.settings import DatabaseSettings, LimitSettings, Settings
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime
from tests.integration.engine_fixtures import executor_settings
from tests.served import ServedEngine, serve_engine

SLUG = "api"
WS = DEFAULT_WORKSPACE_ID

WORKFLOW = textwrap.dedent("""
    import math
    import time

    from conveyor import Retry, TaskContext, Workflows

    app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


    @app.task
    def square(a: int) -> int:
        '''The square of a.'''
        return a * a


    @app.task
    def kind_of(value: str, maybe: int | None = None) -> list[str]:
        return [type(value).__name__, type(maybe).__name__]


    @app.task
    def fails(message: str) -> str:
        raise ValueError(message)


    @app.task
    def chatty(n: int) -> int:
        for i in range(n):
            print(f"line {i}", flush=True)
        return n


    @app.task
    def slow(seconds: float) -> str:
        time.sleep(seconds)
        return "done"


    @app.task
    def not_a_number() -> float:
        return math.nan


    @app.task
    async def square_plus_one(ctx: TaskContext, a: int) -> int:
        return await ctx.run(square, a) + 1


    @app.task
    def keep(value):  # no annotation: any JSON reaches it, as Render's SDK would pass it
        return "kept"


    @app.task
    def lone_surrogate() -> str:
        return "\\ud800"


    @app.task
    def fails_with_lone_surrogate() -> None:
        raise ValueError("bad \\ud800 text")
""")


def write_workflow(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.py").write_text(WORKFLOW)
    return folder


def make_settings(data_dir: Path, database_url: str | None = None) -> Settings:
    return Settings(
        data_dir=data_dir,
        database=DatabaseSettings(url=database_url),
        limits=LimitSettings(min_timeout_seconds=1),
        executor=executor_settings(kill_grace_seconds=1.0),
        # workflows here name file:// repositories, which a server refuses unless told
        builds=BuildSettings(allow_file_repos=True),
    )


ApiServer = ServedEngine


def create_database(data_dir: Path) -> None:
    """A data dir holding the database a server creates when it first starts there."""

    async def open_and_close() -> None:
        runtime = await Runtime.open(Settings(data_dir=data_dir))
        await runtime.close()

    asyncio.run(open_and_close())


@contextmanager
def serve_api(
    root: Path,
    *,
    anonymous: str | None = WS,
    ping: float = 25.0,
    database_url: str | None = None,
) -> Iterator[ApiServer]:
    """A Runtime with the test workflow registered, started, and its API on a loopback port."""

    async def prepare(runtime: Runtime) -> None:
        version = await runtime.register_workflow(
            write_workflow(root / "workflow"), slug=SLUG, start_command="conveyor-worker main:app"
        )
        assert version.status is VersionStatus.READY, version.message
        await runtime.start()

    def make_app(runtime: Runtime) -> ASGIApp:
        return create_app(runtime, anonymous_workspace=anonymous, sse_ping_seconds=ping)

    settings = make_settings(root / "data", database_url)
    with serve_engine(settings, prepare, [make_app], name="api-server") as s:
        yield s
