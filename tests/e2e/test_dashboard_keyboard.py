"""By keyboard alone, on a phone's screen, and while the list changes under the reader."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from core.domain import RunStatus
from tests.e2e.conftest import VIEWPORT, Shot
from tests.e2e.live_server import WS, LiveServer
from tests.e2e.runs import RUN_URL, cancel, start, status_of, wait_status

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}


def focused(page: Page) -> Any:
    return page.evaluate(
        """() => {
            const at = document.activeElement;
            const row = at.closest("tr");
            const run = row ? row.dataset.runId : null;
            return {tag: at.tagName, text: at.textContent.trim(), run: run};
        }"""
    )


def tab_to(page: Page, text: str, most: int = 12) -> int:
    """Presses Tab until the focused element reads `text`; how many presses it took."""
    for presses in range(1, most + 1):
        page.keyboard.press("Tab")
        if focused(page)["text"] == text:
            return presses
    raise AssertionError(f"{text!r} not reached in {most} Tabs (at {focused(page)})")


def test_open_rerun_and_cancel_a_run_by_keyboard(page: Page, server: LiveServer) -> None:
    sleeper = start(server, "hello/sleeper", {"seconds": 60})
    wait_status(server, sleeper.id, RunStatus.RUNNING)
    page.goto(f"{server.url}/runs?task=hello/sleeper&status=running")
    page.keyboard.press("Tab")
    assert focused(page)["text"] == "Skip to the runs"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # three keys from the address bar to the newest run
    assert focused(page)["run"] == sleeper.id
    page.keyboard.press("j")  # j / k move between runs too
    page.keyboard.press("k")
    assert focused(page)["run"] == sleeper.id
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server.url}/runs/{sleeper.id}")

    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link, into the page
    assert tab_to(page, "Rerun", most=4) <= 4
    page.keyboard.press("Enter")
    expect(page).to_have_url(RUN_URL)
    again = page.url.rsplit("/", 1)[-1]
    assert again != sleeper.id
    expect(status_of(page)).to_have_attribute("data-status", "running")

    page.once("dialog", lambda dialog: dialog.accept())
    tab_to(page, "Cancel run", most=30)
    page.keyboard.press("Enter")
    expect(status_of(page)).to_have_attribute("data-status", "canceled")
    done = server.call(server.engine.service.get_run(WS, again))
    assert done.status is RunStatus.CANCELED and done.input == {"seconds": 60}

    # `/` goes to the id box: the start of an id is enough
    page.keyboard.press("/")
    page.keyboard.type(sleeper.id[4:16])
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server.url}/runs/{sleeper.id}")
    cancel(server, sleeper)


def test_copy_buttons_copy_ids(browser: Browser, server: LiveServer) -> None:
    run = start(server, "hello/square", {"a": 2})
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/runs/{run.id}")
        page.get_by_role("button", name=f"Copy run id {run.id}").click()
        expect(page.locator("#announce")).to_have_text(f"Copied {run.id}")
        assert page.evaluate("navigator.clipboard.readText()") == run.id
    finally:
        context.close()


def test_the_list_and_a_run_fit_a_phone(
    browser: Browser, server: LiveServer, screenshot: Shot
) -> None:
    run = start(server, "tree/pipeline", {"branches": 2, "width": 2})
    wait_status(server, run.id, RunStatus.SUCCEEDED)
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, has_touch=True)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.goto(f"{server.url}/runs")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        filters = page.locator("#filters").bounding_box()
        assert filters is not None and filters["height"] < 200, filters  # not the first screen
        first_row = page.locator("#run-rows > tr").first.bounding_box()
        assert first_row is not None and first_row["y"] + first_row["height"] < PHONE["height"]
        screenshot(page, "runs-phone")
        page.goto(f"{server.url}/runs/{run.id}")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        bar = page.locator("#wf-rows > tr td.wf-bar").first.bounding_box()
        assert bar is not None and bar["width"] > 300, "each bar gets the screen's width"
        screenshot(page, "run-phone")
    finally:
        context.close()


def test_focus_and_scroll_stay_while_rows_change(browser: Browser, server: LiveServer) -> None:
    for n in range(12):
        start(server, "hello/square", {"a": n})
    focus_run = start(server, "hello/sleeper", {"seconds": 3})
    wait_status(server, focus_run.id, RunStatus.RUNNING)
    context = browser.new_context(viewport={"width": 1280, "height": 600})
    try:
        page = context.new_page()
        page.goto(f"{server.url}/runs")
        page.evaluate("window.__sameDocument = true")
        link = page.locator(f'#run-rows tr[data-run-id="{focus_run.id}"] a.run-link')
        link.focus()
        page.evaluate("window.scrollTo(0, 150)")  # reading further down: new rows must not move it
        top = link.bounding_box()
        assert top is not None and 0 < top["y"] < 600
        rows_before = page.locator("#run-rows > tr").count()

        added = [start(server, "hello/square", {"a": 100 + n}) for n in range(3)]
        expect(page.locator("#run-rows > tr")).to_have_count(rows_before + 3)
        for run in added:
            row = page.locator(f'#run-rows tr[data-run-id="{run.id}"]')
            expect(row.locator("[data-status]")).to_have_attribute("data-status", "succeeded")
        # the focused run ends while focused: its row changes in place
        expect(
            page.locator(f'#run-rows tr[data-run-id="{focus_run.id}"] [data-status]')
        ).to_have_attribute("data-status", "succeeded")
        assert focused(page)["run"] == focus_run.id, "focus stayed on the same link"
        after = link.bounding_box()
        assert after is not None and abs(after["y"] - top["y"]) <= 2, (top, after)
        assert page.evaluate("window.__sameDocument") is True
    finally:
        context.close()


def test_one_request_per_page_view_and_durations_tick_in_the_page(
    page: Page, server: LiveServer
) -> None:
    run = start(server, "hello/sleeper", {"seconds": 30})
    wait_status(server, run.id, RunStatus.RUNNING)
    page.goto(f"{server.url}/runs/{run.id}")  # fills the browser's cache
    page.goto(f"{server.url}/runs/{run.id}")
    duration = page.locator("#run-duration .duration")
    shown = duration.text_content()
    page.wait_for_function(
        "t => document.querySelector('#run-duration .duration').textContent !== t", arg=shown
    )
    resources = page.evaluate(
        "() => performance.getEntriesByType('resource').map(e => [e.name, e.transferSize])"
    )
    # the browser keeps its favicon apart; the stylesheet and the script come from its cache
    static = [r for r in resources if re.search(r"/dashboard/static/\w+\.(css|js)", r[0])]
    assert len(static) == 4 and all(size == 0 for _, size in static), static
    fetched = [
        name
        for name, _ in resources
        if "/dashboard/static/" not in name
        and "/dashboard/events" not in name
        and "/dashboard/runs/" not in name  # the log's stream
    ]
    assert fetched == [], "the page asked for nothing more to show time passing"
    cancel(server, run)


def test_a_cursor_that_reads_as_a_number_is_not_a_duration(page: Page, server: LiveServer) -> None:
    # A page's change cursor is `<epoch>.<n>`, its epoch eight random hex digits: one server in
    # about 170 draws one of digits only. Such a cursor is a number to the page's script, and the
    # ticking of durations once took the live region holding it for a duration and overwrote it.
    run = start(server, "hello/sleeper", {"seconds": 30})
    wait_status(server, run.id, RunStatus.RUNNING)

    def digits_only(route: Route) -> None:
        response = route.fetch()
        body = re.sub(r'data-cursor="[0-9a-f]+\.', 'data-cursor="12345678.', response.text())
        assert body != response.text(), "the page carries its cursor"
        route.fulfill(response=response, body=body)

    page.route(f"{server.url}/runs/{run.id}", digits_only)
    page.goto(f"{server.url}/runs/{run.id}")
    duration = page.locator("#run-duration .duration")
    shown = duration.text_content()
    page.wait_for_function(
        "t => document.querySelector('#run-duration .duration').textContent !== t", arg=shown
    )
    expect(page.locator("#run-live #run-head h1")).to_contain_text("Run of hello/sleeper")
    expect(page.locator("#run-live")).to_have_attribute("data-cursor", re.compile(r"^12345678\."))
    cancel(server, run)


def test_bulk_cancel_from_a_filtered_list(page: Page, server: LiveServer) -> None:
    done = start(server, "hello/square", {"a": 1})
    wait_status(server, done.id, RunStatus.SUCCEEDED)
    # two take the slots, the third waits: running and pending runs are cancelled alike
    sleepers = [start(server, "hello/sleeper", {"seconds": 120}) for _ in range(3)]
    ids = "&".join(f"id={run.id}" for run in [*sleepers, done])
    page.goto(f"{server.url}/runs?{ids}")
    rows = page.locator("#run-rows > tr")
    expect(rows).to_have_count(4)
    # a finished run cannot be cancelled: nothing to tick
    expect(page.locator(f'tr[data-run-id="{done.id}"] input[name="run"]')).to_be_disabled()
    page.locator(f'tr[data-run-id="{sleepers[0].id}"] a.run-link').focus()
    page.keyboard.press("x")  # ticks the focused run
    expect(page.locator("#selected-count")).to_have_text("1 selected")
    page.get_by_label("Select every unfinished run on this page").check()
    expect(page.locator("#selected-count")).to_have_text("3 selected")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel selected").click()
    expect(page.locator("#notice")).to_have_text("3 runs cancelled.")
    expect(page).to_have_url(re.compile(r"canceled=3$"))
    expect(rows).to_have_count(4)  # the same filtered list, back
    for run in sleepers:
        expect(page.locator(f'tr[data-run-id="{run.id}"] [data-status]')).to_have_attribute(
            "data-status", "canceled"
        )
        assert server.call(server.engine.service.get_run(WS, run.id)).status is RunStatus.CANCELED
