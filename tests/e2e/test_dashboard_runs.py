"""Runs in the browser: start from the form, live status, fan-out trees, retries, cancel, logs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from core.domain import RunStatus
from tests.e2e.conftest import Shot
from tests.e2e.live_server import MAX_CONCURRENCY, WS, LiveServer
from tests.e2e.runs import RUN_URL, start, status_of, wait_status

pytestmark = pytest.mark.slow


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
    expect(page.locator("#wf-rows rect.seg-queued[data-open]")).to_have_count(1)

    for blocker in blockers:
        server.call(server.engine.service.cancel_run(WS, blocker.id))
    expect(status_of(page)).to_have_attribute("data-status", "running")
    expect(status_of(page)).to_have_attribute("data-status", "succeeded")
    expect(page.locator("#output")).to_contain_text("2")
    # queued, then ran: the bar has both, closed
    expect(page.locator("#wf-rows rect.seg-ok")).to_have_count(1)
    expect(page.locator("#wf-rows rect[data-open]")).to_have_count(0)
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
    rows = page.locator("#wf-rows > tr")
    expect(rows).to_have_count(6)
    expect(rows.locator("[data-status=succeeded]")).to_have_count(6)
    expect(page.locator("#wf-rows > tr[data-depth='1'] th a", has_text="square")).to_have_count(5)
    expect(page.locator("#wf-rows > tr").first.locator("rect.seg-waiting")).not_to_have_count(0)
    expect(page.locator("#output")).to_contain_text("55")
    # the indented list is kept, folded, for whoever prefers it
    page.get_by_text("The tree as an indented list").click()
    children = page.locator("#run-tree li li")
    expect(children).to_have_count(5)
    expect(children.locator("[data-status=succeeded]")).to_have_count(5)
    screenshot(page, "run-tree")

    # A child's page shows the same tree, itself marked as the current run.
    rows.nth(1).locator("th a").click()
    expect(page.locator("#wf-rows tr.current th a[aria-current=page]")).to_have_text("square")
    expect(page.locator("#wf-rows > tr")).to_have_count(6)


def test_runs_list_shows_roots_with_children_a_click_away(page: Page, server: LiveServer) -> None:
    root = start(server, "hello/sum_of_squares", [[1, 2, 3]])
    wait_status(server, root.id, RunStatus.SUCCEEDED)
    short = f"…{root.id[-8:]}"

    page.goto(f"{server.url}/runs")
    expect(page.locator("#kind-switch")).to_contain_text("Root runs only")
    row = page.locator(f"tr[data-run-id='{root.id}']")
    expect(row.locator(".c-kind")).to_have_text("root · children")
    expect(page.locator("tr[data-run-id] .c-kind", has_text="child of")).to_have_count(0)

    row.get_by_role("link", name="children").click()
    expect(page).to_have_url(f"{server.url}/runs?parent={root.id}")
    children = page.locator("tr[data-run-id]")
    expect(children).to_have_count(3)
    expect(children.locator(".c-kind")).to_have_text([f"child of {short}"] * 3)

    # the tree names the parent with the same cut of its id
    children.first.locator(".c-kind a").click()
    expect(page).to_have_url(f"{server.url}/runs/{root.id}")
    expect(page.locator("#wf-rows tr.current .wf-name code")).to_have_text(short)
    expect(page.locator("#run-head")).to_contain_text("This run's duration")
    expect(page.locator("#wf-summary")).to_contain_text("tree's wall time")

    page.goto(f"{server.url}/runs")
    page.get_by_role("link", name="Show children too").click()
    expect(page.locator("tr[data-run-id] .c-kind", has_text=f"child of {short}")).to_have_count(3)


def test_failed_attempt_shows_its_stack_trace_and_the_retry(
    page: Page, server: LiveServer, tmp_path: Path, screenshot: Shot
) -> None:
    marker = server.scratch / f"marker-{tmp_path.name}"
    run = start(server, "retry/fails_once", {"marker": str(marker)})
    page.goto(f"{server.url}/runs/{run.id}")
    expect(status_of(page)).to_have_attribute("data-status", "succeeded")
    attempts = page.locator("#attempts > li")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0).locator(".outcome")).to_have_text("error")
    expect(attempts.nth(1).locator(".outcome")).to_have_text("ok")
    first = attempts.nth(0)
    first.get_by_text("Traceback of attempt #0").click()
    expect(first.locator(".exception")).to_contain_text("RuntimeError: first attempt fails")
    # the user's frame first; the SDK's frames folded under the full traceback
    expect(first.locator(".frames li")).to_have_count(1)
    expect(first.locator(".frames li")).to_contain_text("retry_once.py")
    expect(first.locator(".full-trace summary")).to_contain_text("conveyor")
    first.locator(".full-trace summary").click()
    expect(first.locator("pre.trace")).to_contain_text("Traceback (most recent call last)")
    expect(page.locator("#run-head dl")).to_contain_text("retries 1")
    kinds = page.locator("#wf-rows rect").evaluate_all(
        "rects => rects.map(r => r.getAttribute('class').replace('seg-', ''))"
    )
    assert kinds[-3:] == ["failed", "backoff", "ok"] or kinds[-4:] == [
        "failed",
        "backoff",
        "queued",
        "ok",
    ], kinds
    expect(page.locator(".error-box")).to_have_count(0)  # it succeeded in the end
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
    done = server.call(server.engine.service.get_run(WS, run.id))
    assert done.status is RunStatus.CANCELED


def test_logs_follow_search_and_download(page: Page, server: LiveServer, screenshot: Shot) -> None:
    run = start(server, "hello/sleeper", {"seconds": 5})
    wait_status(server, run.id, RunStatus.RUNNING)
    page.goto(f"{server.url}/runs/{run.id}")
    page.evaluate("window.__sameDocument = true")
    log = page.locator("#log")
    expect(log).to_contain_text("slept 2 of 5 s")
    # The lines arrived while the run was still running: the tail is live, not a reload.
    assert page.locator("#run-status [data-status]").get_attribute("data-status") == "running"
    expect(page.locator("#log-state")).to_contain_text("following attempt #0")
    expect(page.get_by_label("Follow new lines")).to_be_checked()
    screenshot(page, "run-logs")
    expect(status_of(page)).to_have_attribute("data-status", "succeeded")
    expect(log).to_contain_text("slept 4 of 5 s")

    page.get_by_label("Search the log").fill("of 5 s")
    expect(page.locator("#log-matches")).to_have_text(re.compile(r"^5 of \d+ lines match$"))
    expect(log.locator("mark")).to_have_count(5)
    page.get_by_label("Search the log").fill("slept 3")
    expect(log.locator(".ln")).to_have_count(1)
    expect(log.locator(".ln")).to_contain_text("slept 3 of 5 s")
    page.get_by_label("Search the log").fill("")
    expect(log).to_contain_text("slept 0 of 5 s")
    # each line with the time the platform saw it, which can be hidden
    stamp = log.locator(".ln .ts").first
    expect(stamp).to_have_text(re.compile(r"^\d\d:\d\d:\d\d\.\d{3}$"))
    page.get_by_label("Times").uncheck()
    expect(stamp).to_be_hidden()

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the log").click()
    saved = Path(download.value.path()).read_text()
    assert download.value.suggested_filename == f"{run.id}-attempt-0.log"
    assert "slept 0 of 5 s" in saved and "slept 4 of 5 s" in saved
    assert page.evaluate("window.__sameDocument") is True
    page.reload()  # drawn by the server now, from the stamps the engine kept
    expect(log.locator(".ln .ts").first).to_have_text(re.compile(r"^\d\d:\d\d:\d\d\.\d{3}$"))
    expect(log.locator(".ln .ts").first).to_have_attribute("title", re.compile(r" UTC$"))


def test_pages_read_without_javascript(browser: Any, server: LiveServer, screenshot: Shot) -> None:
    run = start(server, "hello/add_squares", [3, 4])
    wait_status(server, run.id, RunStatus.SUCCEEDED)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/runs/{run.id}")
        expect(status_of(page)).to_have_text("Succeeded")
        expect(page.locator("#wf-rows > tr")).to_have_count(3)
        expect(page.locator("#wf-rows rect.seg-ok:last-of-type")).to_have_count(3)
        expect(page.locator("#run-tree li li")).to_have_count(2)
        expect(page.locator("#output")).to_contain_text("25")
        expect(page.locator("#log-state")).to_contain_text("written nothing to its output")
        expect(page.locator("button.copy:visible")).to_have_count(0)  # they need the script
        page.goto(f"{server.url}/workflows")
        # hello, retry, typed, tree, flows
        expect(page.locator("table.versions .badge")).to_have_count(5)
        screenshot(page, "workflows")
        page.goto(f"{server.url}/queue")
        expect(page.locator("#q-limit")).to_have_text(str(MAX_CONCURRENCY))
        page.goto(f"{server.url}/usage")
        expect(page.locator("#per-task")).to_contain_text("hello/square")
        expect(page.locator("svg rect.bar").first).to_be_visible()
        screenshot(page, "usage")
    finally:
        context.close()
