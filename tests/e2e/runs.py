"""Helpers of the browser tests: start runs on the live engine and wait for their states."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from playwright.sync_api import Locator, Page

from core.domain import RunFilter, RunInfo, RunStatus
from tests.e2e.live_server import WS, LiveServer

RUN_URL = re.compile(r"/runs/trn-[0-9a-z]+$")


def start(server: LiveServer, task: str, run_input: Any) -> RunInfo:
    return server.call(server.engine.service.create_run(WS, task, run_input))


def wait_status(server: LiveServer, run_id: str, wanted: RunStatus, timeout: float = 30) -> None:
    """Until the engine reports `wanted` (the wait is on the run's own change events)."""
    service = server.engine.service

    async def until() -> RunInfo:
        async with asyncio.timeout(timeout):
            while (run := await service.wait_run(WS, run_id, 1.0)).status is not wanted:
                if run.status.terminal:
                    raise AssertionError(f"run {run_id} ended {run.status}, wanted {wanted}")
        return run

    server.call(until(), timeout + 5)


def run_ids(server: LiveServer) -> set[str]:
    """Every run of the workspace, page by page: the tests share one engine, so a test compares
    these sets before and after (a capped count stops changing once earlier tests filled it)."""
    found: set[str] = set()
    cursor: str | None = None
    while True:
        page = server.call(
            server.engine.service.list_runs(WS, RunFilter(), cursor=cursor, limit=100)
        )
        found.update(run.id for run in page.items)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def cancel(server: LiveServer, *runs: RunInfo) -> None:
    for run in runs:
        server.call(server.engine.service.cancel_run(WS, run.id))


def cancel_unfinished(server: LiveServer) -> None:
    """What other tests left running or pending, so a test starts with every slot free."""
    unfinished = RunFilter(status=(RunStatus.PENDING, RunStatus.RUNNING), roots_only=True)
    found = server.call(server.engine.service.list_runs(WS, unfinished, cursor=None, limit=100))
    cancel(server, *found.items)


def status_of(page: Page) -> Locator:
    return page.locator("#run-status [data-status]")
