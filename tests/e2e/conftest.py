"""Browser tests: one headless Debian Chromium and one live engine for all of them.

Package scope, not session: Playwright's sync API keeps an event loop marked as running on the
main thread while it is open, which would break every anyio test collected after this package.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.e2e.live_server import LiveServer, live_server
from tests.e2e.runs import cancel_unfinished

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# `make screenshots` points this at docs/screenshots; otherwise they go to a temporary folder,
# so running the tests never rewrites tracked files.
SCREENSHOTS_ENV = "SCREENSHOTS_DIR"
VIEWPORT = {"width": 1280, "height": 860}
Shot = Callable[[Page, str], None]


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run .ci/setup.d/40-chromium.sh (apt install chromium)")
    with sync_playwright() as driver:
        expect.set_options(timeout=20_000)
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("dashboard")) as running:
        yield running


@pytest.fixture(autouse=True)
def free_slots(server: LiveServer) -> Iterator[None]:
    """Every test starts with the engine's slots free: what one leaves unfinished is cancelled."""
    yield
    cancel_unfinished(server)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(scope="package")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def screenshot(screenshots: Path) -> Shot:
    """Saves a full-page PNG (the images of docs/dashboard.md under `make screenshots`)."""

    def save(page: Page, name: str) -> None:
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)

    return save
