"""A workflow from git: where it comes from, deploying it from the page, its build log live."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Shot
from tests.e2e.live_server import LiveServer
from tests.integration.build_fixtures import make_remote

pytestmark = pytest.mark.slow

WORKFLOW = """
from conveyor import Workflows

app = Workflows()


@app.task
def greet(name: str) -> str:
    return f"hello {name}"
"""
BUILD_URL = re.compile(r"/builds/bld-[0-9a-z]+$")


def test_deploy_from_the_page_and_follow_the_build(
    page: Page, server: LiveServer, tmp_path: Path, screenshot: Shot
) -> None:
    remote = make_remote(tmp_path, name="greeter")
    remote.commit({"main.py": WORKFLOW}, "first")
    slow_build = "echo building-step-one; sleep 2; echo building-step-two"
    body = {"name": "greeter", "repo": remote.url, "buildCommand": slow_build}
    with httpx.Client(base_url=server.url) as client:
        created = client.post("/v1/workflows", json=body)
    assert created.status_code == 201, created.text

    page.goto(f"{server.url}/workflows")
    section = page.locator("#workflow-greeter")
    expect(section.locator(".repo")).to_have_text(remote.url)
    expect(section.locator(".branch")).to_have_text("main")
    expect(section.locator(".last-build")).to_have_text("none")
    section.get_by_role("button", name="Deploy greeter").click()  # the branch's head
    expect(page).to_have_url(BUILD_URL)
    page.evaluate("window.__sameDocument = true")
    log = page.locator("#log")
    expect(log).to_contain_text("building-step-one")
    # the rest arrives as it is written, and the status with it
    expect(page.locator("[data-build-status]")).to_have_attribute("data-build-status", "succeeded")
    expect(log).to_contain_text("building-step-two")
    expect(page.locator("#build-summary")).to_contain_text(remote.shas[0])
    assert page.evaluate("window.__sameDocument") is True
    screenshot(page, "build")

    broken = remote.commit({"main.py": "raise SystemExit('no app here')\n"}, "broken")
    page.goto(f"{server.url}/workflows")
    section.get_by_label("Commit to deploy").fill(broken)
    section.get_by_role("button", name="Deploy greeter").click()
    expect(page.locator("[data-build-status]")).to_have_attribute("data-build-status", "failed")
    page.goto(f"{server.url}/workflows")
    expect(section.locator(".last-build [data-build-status]")).to_have_text("Failed")
    expect(section.locator(".last-build")).to_contain_text(broken[:12])
    expect(section.locator("table.builds [data-build-status]")).to_have_text(
        ["Failed", "Succeeded"]
    )
    screenshot(page, "workflows-git")
    field = section.get_by_label("Commit to deploy")
    field.fill("not-a-sha")
    field.evaluate("field => field.removeAttribute('pattern')")  # what the browser would check
    section.get_by_role("button", name="Deploy greeter").click()
    expect(section.get_by_role("alert")).to_contain_text("full 40-character sha")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value("not-a-sha")
