"""Runs in the browser: start from the form, live status, fan-out trees, retries, cancel, logs."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from core.domain import RunInfo, RunStatus
from tests.e2e.conftest import Shot
from tests.e2e.live_server import MAX_CONCURRENCY, WS, LiveServer

pytestmark = pytest.mark.slow

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


def status_of(page: Page) -> Any:
    return page.locator("#run-status [data-status]")


def test_run_started_from_the_form_goes_live_to_succeeded(
    page: Page, server: LiveServer, screenshot: Shot
) -> None:
    # Every slot busy, so the new run must wait in `pending` until the blockers are cancelled.
    blockers = [start(server, "hello/sleeper", {"seconds": 120}) for _ in range(MAX_CONCURRENCY)]
    for blocker in blockers:
        wait_status(server, blocker.id, RunStatus.RUNNING)

    page.goto(f"{server.url}/tasks")
    screenshot(page, "tasks")
    page.get_by_role("link", name="Run hello/sleeper").click()
    page.get_by_label("seconds").fill("2")
    page.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(RUN_URL)
    page.evaluate("window.__sameDocument = true")
    expect(status_of(page)).to_have_text("Pending")

    for blocker in blockers:
        server.call(server.engine.service.cancel_run(WS, blocker.id))
    expect(status_of(page)).to_have_attribute("data-status", "running")
    expect(status_of(page)).to_have_attribute("data-status", "succeeded")
    expect(page.locator("#output")).to_contain_text("2")
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"

    page.goto(f"{server.url}/runs")
    expect(page.locator("tr[data-run-id]").first).to_be_visible()
    screenshot(page, "runs")


def test_the_form_asks_for_each_type_as_it_should(
    page: Page, server: LiveServer, screenshot: Shot
) -> None:
    page.goto(f"{server.url}/tasks/typed/describe")
    expect(page.locator("#task-doc")).to_contain_text("Gives back its input")
    expect(page.get_by_label("count")).to_have_attribute("type", "number")
    page.get_by_label("count").fill("3")
    page.get_by_label("loud").check()
    page.get_by_label("color").select_option("green")
    page.get_by_label("tags").fill('["a", "b"]')
    screenshot(page, "task-form")
    page.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(RUN_URL)
    expect(status_of(page)).to_have_attribute("data-status", "succeeded")
    output = page.locator("#output")
    for shown in ('"count": [', '"int"', '"loud": [', "true", '"green"', '"list"'):
        expect(output).to_contain_text(shown)
    run_id = page.url.rsplit("/", 1)[-1]
    run = server.call(server.engine.service.get_run(WS, run_id))
    assert run.input == {"count": 3, "loud": True, "color": "green", "tags": ["a", "b"]}
    assert run.results == [
        {
            "count": [3, "int"],
            "ratio": [1.5, "float"],
            "loud": [True, "bool"],
            "color": ["green", "str"],
            "tags": [["a", "b"], "list"],
        }
    ]


def test_fan_out_tree_shows_every_child(page: Page, server: LiveServer, screenshot: Shot) -> None:
    page.goto(f"{server.url}/tasks/hello/sum_of_squares")
    page.get_by_label("Raw JSON", exact=True).check()
    page.get_by_label(re.compile("^Raw JSON input")).fill("[[1, 2, 3, 4, 5]]")
    page.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(RUN_URL)
    expect(status_of(page)).to_have_attribute("data-status", "succeeded")
    tree = page.locator("#run-tree")
    children = tree.locator("li li")
    expect(children).to_have_count(5)
    expect(children.locator("[data-status=succeeded]")).to_have_count(5)
    expect(tree.locator("li li a", has_text="square")).to_have_count(5)
    expect(page.locator("#output")).to_contain_text("55")
    screenshot(page, "run-tree")

    # A child's page shows the same tree, itself marked as the current run.
    children.first.locator("a").first.click()
    expect(page.locator("#run-tree li.current a[aria-current=page]")).to_have_text("square")
    expect(page.locator("#run-tree li")).to_have_count(6)


def test_failed_attempt_shows_its_stack_trace_and_the_retry(
    page: Page, server: LiveServer, tmp_path: Path, screenshot: Shot
) -> None:
    run = start(server, "retry/fails_once", {"marker": str(tmp_path / "marker")})
    page.goto(f"{server.url}/runs/{run.id}")
    expect(status_of(page)).to_have_attribute("data-status", "succeeded")
    attempts = page.locator("#attempts > li")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0).locator(".outcome")).to_have_text("error")
    expect(attempts.nth(1).locator(".outcome")).to_have_text("ok")
    first = attempts.nth(0)
    first.locator("summary").click()
    expect(first.locator("pre.trace")).to_contain_text("Traceback")
    expect(first.locator("pre.trace")).to_contain_text("RuntimeError: first attempt fails")
    expect(page.locator("#run-live dl")).to_contain_text("Retries1")
    screenshot(page, "run-retry")


def test_cancel_a_sleeping_run(page: Page, server: LiveServer) -> None:
    run = start(server, "hello/sleeper", {"seconds": 120})
    page.goto(f"{server.url}/runs/{run.id}")
    expect(status_of(page)).to_have_attribute("data-status", "running")

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Cancel run").click()
    expect(status_of(page)).to_have_attribute("data-status", "running")

    messages: list[str] = []

    def accept(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Cancel run").click()
    expect(status_of(page)).to_have_attribute("data-status", "canceled")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    assert messages and "Cancel this run" in messages[0]
    assert server.call(server.engine.service.get_run(WS, run.id)).status is RunStatus.CANCELED


def test_logs_follow_live_while_the_attempt_runs(
    page: Page, server: LiveServer, screenshot: Shot
) -> None:
    run = start(server, "hello/sleeper", {"seconds": 5})
    wait_status(server, run.id, RunStatus.RUNNING)
    page.goto(f"{server.url}/runs/{run.id}")
    page.evaluate("window.__sameDocument = true")
    log = page.locator("#log")
    expect(log).to_contain_text("slept 2 of 5 s")
    # The lines arrived while the run was still running: the tail is live, not a reload.
    assert page.locator("#run-status [data-status]").get_attribute("data-status") == "running"
    expect(page.locator("#log-state")).to_contain_text("following attempt 0")
    screenshot(page, "run-logs")
    expect(status_of(page)).to_have_attribute("data-status", "succeeded")
    expect(log).to_contain_text("slept 4 of 5 s")
    assert page.evaluate("window.__sameDocument") is True


def test_pages_read_without_javascript(browser: Any, server: LiveServer, screenshot: Shot) -> None:
    run = start(server, "hello/add_squares", [3, 4])
    wait_status(server, run.id, RunStatus.SUCCEEDED)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/runs/{run.id}")
        expect(status_of(page)).to_have_text("Succeeded")
        expect(page.locator("#run-tree li li")).to_have_count(2)
        expect(page.locator("#output")).to_contain_text("25")
        page.goto(f"{server.url}/workflows")
        expect(page.locator("table.versions .badge")).to_have_count(3)  # hello, retry, typed
        screenshot(page, "workflows")
        page.goto(f"{server.url}/usage")
        expect(page.locator("#q-limit")).to_have_text(str(MAX_CONCURRENCY))
        expect(page.locator("#per-task")).to_contain_text("hello/square")
        expect(page.locator("svg rect.bar").first).to_be_visible()
        screenshot(page, "usage")
    finally:
        context.close()
