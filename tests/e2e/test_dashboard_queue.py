"""The queue page follows the queue: who holds the slots, who waits, in which order, and why."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from core.domain import RunStatus
from tests.e2e.conftest import Shot
from tests.e2e.live_server import MAX_CONCURRENCY, LiveServer
from tests.e2e.runs import cancel, cancel_unfinished, start, wait_status

pytestmark = pytest.mark.slow


def test_the_queue_page_is_live_with_each_wait_explained(
    page: Page, server: LiveServer, screenshot: Shot
) -> None:
    cancel_unfinished(server)
    solo = start(server, "tree/solo", {"seconds": 120})
    wait_status(server, solo.id, RunStatus.RUNNING)
    solo_too = start(server, "tree/solo", {"seconds": 120})  # its task runs one at a time
    holder = start(server, "hello/sleeper", {"seconds": 120})
    wait_status(server, holder.id, RunStatus.RUNNING)
    square = start(server, "hello/square", {"a": 5})  # every slot is taken

    page.goto(f"{server.url}/queue")
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#q-running")).to_have_text(str(MAX_CONCURRENCY))
    expect(page.locator("#q-slots tbody tr")).to_have_count(2)
    pending = page.locator("#q-pending-runs tbody tr")
    expect(pending).to_have_count(2)
    expect(pending.nth(0)).to_have_attribute("data-reason", "task_limit")
    expect(pending.nth(0)).to_contain_text(
        "Task limit: tree/solo runs at most 1 at once, and 1 is running."
    )
    expect(pending.nth(1)).to_have_attribute("data-reason", "workspace_limit")
    expect(pending.nth(1)).to_contain_text("every slot is in use")
    expect(page.locator("#q-oldest")).to_contain_text(solo_too.id)
    screenshot(page, "queue")

    cancel(server, holder)  # a slot frees: the square takes it; solo's twin still waits
    wait_status(server, square.id, RunStatus.SUCCEEDED)
    expect(pending).to_have_count(1)
    expect(pending.nth(0)).to_have_attribute("data-reason", "task_limit")
    expect(page.locator("#q-pending")).to_have_text("1")

    cancel(server, solo)  # its twin starts
    expect(page.locator("#q-pending-runs")).to_have_count(0)
    expect(page.locator("#queue-body")).to_contain_text("No run waits for a slot.")
    expect(page.locator("#q-slots")).to_contain_text(solo_too.id)
    assert page.evaluate("window.__sameDocument") is True, "updated in place, not reloaded"
    cancel(server, solo_too)
