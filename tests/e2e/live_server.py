"""A real engine (hello, retry, typed, tree, flows) behind two loopback uvicorn servers in a thread.

One server acts as `conveyor dev` does (anonymous workspace, no sign-in); the other requires an
API key, so sign-in and CSRF are exercised against the same engine.
"""

from __future__ import annotations

import shutil
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from app.server import create_app
from core.build_settings import BuildSettings
from core.domain import VersionStatus
from core.sandbox_settings import SandboxSettings
from core.settings import LimitSettings, Settings
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime
from tests.integration.engine_fixtures import executor_settings
from tests.served import ServedEngine, serve_engine

T = TypeVar("T")
WS = DEFAULT_WORKSPACE_ID
REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello"
RETRY = Path(__file__).parent / "workflows" / "retry"
TYPED = Path(__file__).parent / "workflows" / "typed"
TREE = Path(__file__).parent / "workflows" / "tree"
FLOWS = Path(__file__).parent / "workflows" / "flows"
MAX_CONCURRENCY = 2  # small, so a test can fill every slot and hold a run in `pending`


@dataclass
class LiveServer:
    served: ServedEngine
    api_key: str
    scratch: Path  # mounted into every task, read-write

    @property
    def url(self) -> str:
        """Anonymous, like `conveyor dev`."""
        return self.served.urls[0]

    @property
    def auth_url(self) -> str:
        """Sign-in required."""
        return self.served.urls[1]

    @property
    def engine(self) -> Runtime:
        return self.served.engine

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run `coro` on the engine's loop and wait for its result."""
        return self.served.call(coro, timeout)


async def _register(runtime: Runtime, source: Path, root: Path, slug: str, command: str) -> None:
    target = root / slug
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".conveyor"))
    version = await runtime.register_workflow(target, slug=slug, start_command=command)
    assert version.status is VersionStatus.READY, version.message


@contextmanager
def live_server(root: Path) -> Iterator[LiveServer]:
    # tasks run sandboxed: files they share with the tests go through this mounted folder
    scratch = root / "scratch"
    scratch.mkdir()
    scratch.chmod(0o1777)
    settings = Settings(
        data_dir=root / "data",
        limits=LimitSettings(min_timeout_seconds=1, max_concurrency=MAX_CONCURRENCY),
        executor=executor_settings(kill_grace_seconds=1.0),
        builds=BuildSettings(allow_file_repos=True),  # workflows here name file:// repositories
        sandbox=SandboxSettings(mounts=(f"{scratch}:{scratch}:rw",)),
    )
    keys: list[str] = []

    async def prepare(runtime: Runtime) -> None:
        await _register(runtime, HELLO, root, "hello", "conveyor-worker main:app")
        await _register(runtime, RETRY, root, "retry", "conveyor-worker retry_once:app")
        await _register(runtime, TYPED, root, "typed", "conveyor-worker main:app")
        await _register(runtime, TREE, root, "tree", "conveyor-worker main:app")
        await _register(runtime, FLOWS, root, "flows", "conveyor-worker main:app")
        await runtime.start()
        keys.append((await runtime.keys.create(WS, "e2e")).secret)

    apps = [
        lambda runtime: create_app(runtime, anonymous_workspace=WS, sse_ping_seconds=5.0),
        lambda runtime: create_app(runtime, anonymous_workspace=None, sse_ping_seconds=5.0),
    ]
    with serve_engine(settings, prepare, apps, name="dashboard-server") as served:
        yield LiveServer(served, keys[0], scratch)
