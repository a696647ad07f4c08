"""The engine assembled in one process: database, blobs, events, store, scheduler, agent."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.domain import VersionInfo

if TYPE_CHECKING:
    from core.auth import ApiKeys
    from core.settings import Settings
    from scheduler.service import RunService

DEFAULT_WORKSPACE_ID = "wsp-default"


class Runtime:
    """Build with `await Runtime.open(settings)`, then `await runtime.start()`; `close()` ends it.

    Attributes the API uses: `settings`, `service` (RunService), `keys` (ApiKeys).
    """

    settings: Settings
    service: RunService
    keys: ApiKeys

    @classmethod
    async def open(cls, settings: Settings) -> Runtime:
        raise NotImplementedError

    async def start(self) -> None:
        """Reconcile attempts left by a previous process, then run the scheduler loop."""
        raise NotImplementedError

    async def register_workflow(
        self, path: Path, *, slug: str, start_command: str
    ) -> VersionInfo:
        """Run `start_command` in register mode in `path`; a ready version becomes active."""
        raise NotImplementedError

    async def run_until_idle(self, timeout: float = 60.0) -> None:
        """Wait until no run is pending or running (tests)."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError
