"""A flow run's page while the flow advances: its steps drawn on a time axis as they are
recorded, paused while it sleeps, and done — one page load, every change arriving live."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Connection, update

from core.domain import RunStatus
from scheduler.flows.tables import flow_steps
from scheduler.runs.rows import runs
from tests.e2e.conftest import Shot
from tests.e2e.live_server import LiveServer
from tests.e2e.runs import start, status_of, wait_status

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}


def wake_now(server: LiveServer, run_id: str) -> None:
    """Plays the clock forward: the flow's sleep is due now (the engine has no clock to move,
    so its wake time is), and the scheduler looks again."""
    now = datetime.now(UTC)

    def due(conn: Connection) -> None:
        conn.execute(
            update(flow_steps)
            .where(
                flow_steps.c.run_id == run_id,
                flow_steps.c.type == "sleep",
                flow_steps.c.status == "running",
            )
            .values(wake_at=now)
        )
        conn.execute(update(runs).where(runs.c.id == run_id).values(not_before=now))

    async def wake() -> None:
        writer = server.engine.transitions.writer
        await writer.db.write(due)
        writer.wake_scheduler.set()

    server.call(wake())


def segment_kinds(page: Page, seq: int) -> Any:
    return page.locator(f"#steps-rows > tr[data-seq='{seq}'] rect").evaluate_all(
        "rects => rects.map(r => r.getAttribute('class').replace('seg-', ''))"
    )


def test_the_step_timeline_follows_a_flow_live(
    page: Page, server: LiveServer, tmp_path: Path, screenshot: Shot
) -> None:
    gate = server.scratch / f"gate-{tmp_path.name}"
    run = start(server, "flows/staged", {"gate": str(gate), "nap": 3600})
    page.goto(f"{server.url}/runs/{run.id}")
    page.evaluate("window.__sameDocument = true")
    steps = page.locator("#steps-rows > tr")
    expect(page.locator("#run-head h1 .kind-flow")).to_have_text("flow")

    # 1. the inline step is done; the detached one runs (its task run is held), its bar growing
    expect(steps).to_have_count(2)
    expect(steps.nth(0).locator("[data-step-status]")).to_have_text("Succeeded")
    assert segment_kinds(page, 1) == ["ok"]
    detached = steps.nth(1)
    expect(detached.locator(".step-type")).to_have_text("detached")
    expect(detached.locator("[data-step-status]")).to_have_text("Running")
    bar = detached.locator("rect[data-open]")
    expect(bar).to_have_count(1)
    before = float(bar.get_attribute("width") or 0)
    page.wait_for_function(
        "w => Number(document.querySelector("
        "'#steps-rows > tr[data-seq=\"2\"] rect[data-open]').getAttribute('width')) > w + 500",
        arg=before,
    )
    screenshot(page, "run-flow-live")

    # 2. released: the child ends, the flow reaches its sleep and pauses until its wake time
    gate.touch()
    expect(status_of(page)).to_have_attribute("data-status", "paused")
    expect(page.locator("#run-status")).to_contain_text("Paused — wakes at")
    expect(steps).to_have_count(3)
    sleep = steps.nth(2)
    expect(sleep.locator("[data-step-status]")).to_have_text("Sleeping")
    expect(sleep.locator(".step-details")).to_contain_text("wakes at")
    assert segment_kinds(page, 2) == ["ok"] and segment_kinds(page, 3) == ["sleep"]
    # an hour's sleep stretches the axis to its wake time
    expect(page.locator("#steps-axis > span").last).to_have_text("1 h 0 min")
    child = detached.locator(".step-details a")
    expect(child).to_have_attribute("href", "/runs/" + (child.get_attribute("title") or "?"))
    screenshot(page, "run-flow-paused")

    # the runs list, filtered to flows, says the same
    listing = page.context.new_page()
    listing.goto(f"{server.url}/runs?task_kind=flow")
    row = listing.locator(f"tr[data-run-id='{run.id}']")
    expect(row.locator(".kind-flow")).to_have_text("flow")
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "paused")
    expect(row.locator(".c-status")).to_contain_text("wakes at")
    expect(listing.locator("#run-rows .kind-flow")).to_have_count(
        listing.locator("#run-rows > tr").count()
    )

    # 3. woken: the flow resumes, replays, runs its last step and ends
    wake_now(server, run.id)
    expect(status_of(page)).to_have_attribute("data-status", "succeeded")
    expect(steps).to_have_count(4)
    expect(steps.locator("[data-step-status]")).to_have_text(
        ["Succeeded", "Succeeded", "Woke", "Succeeded"]
    )
    expect(page.locator("#steps-rows rect[data-open]")).to_have_count(0)
    assert segment_kinds(page, 4) == ["ok"]
    expect(sleep.locator(".step-details")).to_contain_text("woke at")
    # the list's row heard of it too, without a reload
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "succeeded")
    assert page.evaluate("window.__sameDocument") is True
    page.reload()  # drawn afresh: the axis the server draws for the flow as it ran
    expect(steps).to_have_count(4)
    screenshot(page, "run-flow")


def test_a_flow_runs_steps_fit_a_phone(
    browser: Browser, server: LiveServer, tmp_path: Path, screenshot: Shot
) -> None:
    gate = server.scratch / f"gate-{tmp_path.name}"
    gate.touch()
    run = start(server, "flows/staged", {"gate": str(gate), "nap": 0})
    wait_status(server, run.id, RunStatus.SUCCEEDED)
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, has_touch=True)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.goto(f"{server.url}/runs/{run.id}")
        expect(page.locator("#steps-rows > tr")).to_have_count(4)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        bar = page.locator("#steps-rows > tr td.wf-bar").first.bounding_box()
        assert bar is not None and bar["width"] > 300, "each bar gets the screen's width"
        screenshot(page, "run-flow-phone")
    finally:
        context.close()
