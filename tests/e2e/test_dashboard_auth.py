"""Sign-in, CSRF and bad input in the browser: refused visibly, nothing changed."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import VIEWPORT, Shot
from tests.e2e.live_server import WS, LiveServer
from tests.e2e.runs import run_ids

pytestmark = pytest.mark.slow


def test_sign_in_is_required_without_the_dev_workspace(
    page: Page, server: LiveServer, screenshot: Shot
) -> None:
    page.goto(f"{server.auth_url}/runs?status=failed")
    expect(page).to_have_url(f"{server.auth_url}/sign-in?next=%2Fruns%3Fstatus%3Dfailed")
    answer = page.request.get(f"{server.auth_url}/dashboard/events")
    assert answer.status == 401 and answer.json()["code"] == "unauthorized"

    page.get_by_label("API key").fill("cvy_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown, revoked or expired")
    screenshot(page, "sign-in")

    page.get_by_label("API key").fill(server.api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.auth_url}/runs?status=failed")
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "conveyor_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.auth_url}/sign-in")
    page.goto(f"{server.auth_url}/tasks")
    expect(page).to_have_url(f"{server.auth_url}/sign-in?next=%2Ftasks")


def test_forged_csrf_token_is_rejected(browser: Browser, server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.goto(f"{server.auth_url}/sign-in")
        page.get_by_label("API key").fill(server.api_key)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"{server.auth_url}/tasks/hello/square")
        before = run_ids(server)
        page.locator("#run-form input[name=csrf_token]").evaluate("field => field.value = 'forged'")
        page.locator("input[name='param.a']").fill("3")
        page.get_by_role("button", name="Start run").click()
        expect(page.get_by_role("alert")).to_contain_text("nothing was changed")
        assert run_ids(server) == before
    finally:
        context.close()


def test_bad_form_input_shows_a_message_and_starts_nothing(
    page: Page, server: LiveServer, screenshot: Shot
) -> None:
    page.goto(f"{server.url}/tasks/hello/add_squares")
    expect(page.locator("#task-doc")).to_contain_text("each square computed by its own child")
    before = run_ids(server)
    # int parameters get number fields; 3.5 is a number but not an int
    expect(page.locator("input[name='param.a']")).to_have_attribute("type", "number")
    page.locator("input[name='param.a']").fill("3.5")
    page.get_by_role("button", name="Start run").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("a: expected int, got 3.5")
    expect(alert).to_contain_text("b is required")
    expect(page.locator("input[name='param.a']")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("input[name='param.a']")).to_have_value("3.5")
    screenshot(page, "task-form-error")

    page.get_by_label("Raw JSON", exact=True).check()
    page.locator("#raw_input").fill('"just a string"')
    page.get_by_role("button", name="Start run").click()
    expect(page.get_by_role("alert")).to_contain_text("must be a JSON array or object")
    page.locator("#raw_input").fill('["three", 4]')
    page.get_by_role("button", name="Start run").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "task 'hello/add_squares' cannot take this input: a: expected int, got 'three'"
    )

    page.goto(f"{server.url}/runs?after=not-a-time")
    expect(page.get_by_role("alert")).to_contain_text("is not a date and time")
    assert run_ids(server) == before


def test_keys_are_created_and_revoked_from_the_page(browser: Browser, server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.goto(f"{server.auth_url}/sign-in")
        page.get_by_label("API key").fill(server.api_key)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="API keys").click()
        expect(page.get_by_role("heading", name="API keys")).to_be_visible()
        expect(page.locator("#keys")).to_contain_text(server.api_key[:10])
        page.get_by_label("Name").fill("laptop")
        page.get_by_label("Expires after").fill("7")
        page.get_by_role("button", name="Create key").click()
        secret = page.locator("#secret").input_value()
        assert secret.startswith("cvy_") and secret != server.api_key
        assert server.call(server.engine.keys.authenticate(secret)) == WS

        page.goto(f"{server.auth_url}/keys")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Revoke laptop").click()
        row = page.locator("tr", has_text="laptop")
        expect(row.locator("[data-status]")).to_have_text("revoked")
        assert server.call(server.engine.keys.authenticate(secret)) is None
    finally:
        context.close()
