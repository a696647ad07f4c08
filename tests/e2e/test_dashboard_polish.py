"""Dark mode, from the system or chosen; no page asks for anything that is not there."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from core.domain import RunStatus
from tests.e2e.conftest import VIEWPORT, Shot
from tests.e2e.live_server import LiveServer
from tests.e2e.runs import start, wait_status

pytestmark = pytest.mark.slow

DARK = "rgb(15, 20, 26)"
LIGHT = "rgb(255, 255, 255)"


def background(page: object) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")  # type: ignore[attr-defined, no-any-return]


def test_dark_mode_follows_the_system_until_one_is_chosen(
    browser: Browser, server: LiveServer, screenshot: Shot
) -> None:
    run = start(server, "tree/pipeline", {"branches": 1, "width": 3, "fail_on": 2})
    wait_status(server, run.id, RunStatus.FAILED)
    context = browser.new_context(viewport=VIEWPORT, color_scheme="dark")  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.goto(f"{server.url}/runs/{run.id}")
        assert background(page) == DARK
        toggle = page.get_by_role("button", name="Dark mode")
        expect(toggle).to_have_attribute("aria-pressed", "true")
        screenshot(page, "run-dark")
        toggle.click()
        assert background(page) == LIGHT
        expect(toggle).to_have_attribute("aria-pressed", "false")
        page.reload()  # the choice is kept, and drawn by the server: no flash of the other theme
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
        assert background(page) == LIGHT
        page.get_by_role("button", name="Dark mode").click()
        assert background(page) == DARK
    finally:
        context.close()


def test_no_page_asks_for_what_is_not_there(browser: Browser, server: LiveServer) -> None:
    run = start(server, "hello/add_squares", [1, 2])
    wait_status(server, run.id, RunStatus.SUCCEEDED)
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    failures: list[str] = []
    try:
        page = context.new_page()
        page.on(
            "response",
            lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        page.on("console", lambda m: failures.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: failures.append(str(e)))
        for path in (
            "/runs",
            f"/runs/{run.id}",
            "/tasks",
            "/workflows",
            "/queue",
            "/usage",
            "/keys",
        ):
            page.goto(f"{server.url}{path}")
            page.wait_for_load_state("load")
        assert failures == []
        icon = page.evaluate(
            "fetch('/favicon.ico').then(r => r.status + ' ' + r.headers.get('content-type'))"
        )
        assert icon == "200 image/svg+xml"
        page.goto(f"{server.url}/no/such/page")
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        expect(page.get_by_role("link", name="Back to runs")).to_be_visible()
    finally:
        context.close()
