"""An engine in this process with one of the bench's workflows registered, as `conveyor dev`
runs it (local executor): what bench.flow_checkpoints, bench.control_plane and bench.sleepers
measure on."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from core.domain import VersionStatus
from core.settings import Settings
from scheduler.runtime import Runtime

WORKFLOWS = Path(__file__).parent / "workflows"


@asynccontextmanager
async def bench_engine(
    workflow: str, settings: Callable[[Path], Settings], *, sandbox_required: bool = True
) -> AsyncIterator[Runtime]:
    """A started engine in a temporary folder, `workflow` (a folder of bench/workflows)
    registered as `bench`; `settings` builds its settings from its data folder."""
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as folder:
        root = Path(folder)
        shutil.copytree(WORKFLOWS / workflow, root / "wf")
        runtime = await Runtime.open(settings(root / "data"), sandbox_required=sandbox_required)
        try:
            version = await runtime.register_workflow(
                root / "wf", slug="bench", start_command="conveyor-worker main:app"
            )
            if version.status is not VersionStatus.READY:
                raise RuntimeError(f"registration failed: {version.message}")
            await runtime.start()
            yield runtime
        finally:
            await runtime.close()
