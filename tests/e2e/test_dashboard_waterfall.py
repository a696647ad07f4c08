"""A tree on one time axis, live; its error shown once; retry from failure and rerun."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from core.domain import RunStatus
from tests.e2e.conftest import Shot
from tests.e2e.live_server import WS, LiveServer
from tests.e2e.runs import RUN_URL, start, status_of, wait_status

pytestmark = pytest.mark.slow


def open_widths(page: Page) -> Any:
    return page.evaluate(
        "() => [...document.querySelectorAll('#wf-rows rect[data-open]')]"
        ".map(r => Number(r.getAttribute('width')))"
    )


def test_a_failing_tree_draws_live_on_one_axis(
    page: Page, server: LiveServer, screenshot: Shot
) -> None:
    # leaf 1 fails both its attempts, so its branch fails, is retried (new leaves), fails again
    run = start(server, "tree/pipeline", {"branches": 2, "width": 2, "fail_on": 1, "seconds": 0.6})
    page.goto(f"{server.url}/runs/{run.id}")
    page.evaluate("window.__sameDocument = true")
    page.wait_for_selector("#wf-rows rect[data-open]")
    # while anything runs, open bars grow with the clock, drawn by the page, not refetched
    before = max(open_widths(page))
    page.wait_for_function(
        "w => Math.max(...[...document.querySelectorAll('#wf-rows rect[data-open]')]"
        ".map(r => Number(r.getAttribute('width')))) > w + 500",
        arg=before,
    )
    expect(page.locator("#wf-rows > tr")).not_to_have_count(1)
    screenshot(page, "run-waterfall-live")

    expect(status_of(page)).to_have_attribute("data-status", "failed", timeout=40_000)
    rows = page.locator("#wf-rows > tr")
    expect(rows).to_have_count(1 + 2 + 2 + 2 + 2)  # root, branches, leaves of 3 branch attempts
    expect(page.locator("#wf-rows rect[data-open]")).to_have_count(0)
    root = rows.first
    expect(root.locator("rect.seg-waiting")).not_to_have_count(0)
    failing = page.locator("#wf-rows > tr[data-depth='2']").filter(
        has=page.locator(".status-failed")
    )
    expect(failing).to_have_count(2)
    for index in range(2):
        kinds = (
            failing.nth(index)
            .locator("rect")
            .evaluate_all("rects => rects.map(r => r.getAttribute('class').replace('seg-', ''))")
        )
        assert "backoff" in kinds and kinds[-1] == "failed" and kinds.count("failed") == 2, kinds
        expect(failing.nth(index).locator(".wf-attempts")).to_have_text("2")
    summary = page.locator("#wf-summary")
    expect(summary).to_contain_text("Failed")
    expect(summary).to_contain_text("cost $")

    # one error display: the exception first, the user's frame, the rest folded
    expect(page.locator(".error-box")).to_have_count(1)
    error = page.locator("#run-error")
    expect(error.locator(".exception")).to_contain_text("leaf 1 refuses to work")
    expect(error.locator(".frames li").first).to_contain_text("main.py")
    expect(error.locator(".full-trace summary")).to_contain_text("folded")
    expect(page.locator("#attempts")).to_contain_text("Its error is shown above")
    assert page.evaluate("window.__sameDocument") is True
    screenshot(page, "run-waterfall")


def test_retry_from_failure_and_rerun(page: Page, server: LiveServer) -> None:
    run = start(server, "tree/pipeline", {"branches": 1, "width": 2, "fail_on": 0})
    wait_status(server, run.id, RunStatus.FAILED)
    page.goto(f"{server.url}/runs/{run.id}")

    # the failure started in leaf 0, under each of its branch's two attempts
    page.get_by_label("Retry", exact=True).select_option("failed")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Retry from failure").click()
    expect(page).to_have_url(re.compile(r"/runs\?id=trn-.*&id=trn-"))
    rows = page.locator("#run-rows > tr")
    expect(rows).to_have_count(2)
    expect(rows.locator(".c-task")).to_have_text(["tree/leaf", "tree/leaf"])
    new_ids = [rows.nth(i).get_attribute("data-run-id") or "" for i in range(2)]
    history = server.call(server.engine.service.tree_history(WS, run.id, 100))
    origins = [r for r in history.runs if r.task_name == "leaf" and r.status is RunStatus.FAILED]
    started = [server.call(server.engine.service.get_run(WS, i)) for i in new_ids]
    originals = [server.call(server.engine.service.get_run(WS, o.id)) for o in origins]
    assert sorted(str(s.input) for s in started) == sorted(str(o.input) for o in originals)
    assert all(s.parent_id is None for s in started), "new roots: the old parents have ended"

    page.goto(f"{server.url}/runs/{run.id}")
    page.get_by_label("Version").select_option("active")
    page.get_by_role("button", name="Rerun").click()
    expect(page).to_have_url(RUN_URL)
    assert page.url.rsplit("/", 1)[-1] != run.id
    rerun = server.call(server.engine.service.get_run(WS, page.url.rsplit("/", 1)[-1]))
    assert (rerun.task_slug, rerun.input) == (
        "tree/pipeline",
        {"branches": 1, "width": 2, "fail_on": 0},
    )
    wait_status(server, rerun.id, RunStatus.FAILED)
