"""`python -m bench.dashboard`: the dashboard under load, measured in Debian's Chromium.

1. The runs page with 10,000 runs in the database: the server's time to first byte, first
   contentful paint, and the bytes sent.
2. The waterfall of a 1,000-run tree (a root, 9 branches, 990 leaves, some retried, one still
   running so the page keeps ticking): first byte, first paint, the first frame with every bar
   drawn, the page's bytes, and the script's cost per second of ticking (Chrome's own counters).
3. Bytes per live update: real runs on the embedded engine (examples/hello) while the runs page
   and a run's page are open: every event-stream message and fragment the pages received,
   divided by the run changes they show.

Runs and attempts of 1 and 2 are written straight into a fresh SQLite database, in the shapes the
engine writes (`bench.dashboard_data`); the app serving them is the real one (uvicorn on
loopback).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from bench.dashboard_data import WS, register_hello, serve, synthesize
from core.domain import RunStatus
from scheduler.runtime import Runtime

SLOTS = 4  # the served engine's concurrency limit
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]

PAINT = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  return {ttfb: nav.responseStart - nav.requestStart, fcp: fcp ? fcp.startTime : null,
          dom: nav.domContentLoadedEventEnd, bytes: nav.transferSize, html: nav.decodedBodySize};
}"""
# the first frame after the whole document (every bar) is parsed and the script has run
FRAME = """() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(
  () => done(performance.now()))))"""


def page_figures(page: Page, url: str, rounds: int) -> dict[str, float]:
    """Medians over `rounds` fresh loads of `url` (milliseconds, bytes)."""
    found: dict[str, list[float]] = {}
    for _ in range(rounds):
        page.goto("about:blank")
        page.goto(url, wait_until="domcontentloaded")
        frame = page.evaluate(FRAME)
        figures = page.evaluate(PAINT)
        figures["frame"] = frame
        for key, value in figures.items():
            if value is not None:
                found.setdefault(key, []).append(float(value))
    return {key: round(statistics.median(values), 1) for key, values in found.items()}


def ticking_cost(page: Page, seconds: float = 5.0) -> dict[str, float]:
    """Milliseconds of script, layout and style work per second of a page left open."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")

    def metrics() -> dict[str, float]:
        return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}

    before = metrics()
    page.wait_for_timeout(seconds * 1000)
    after = metrics()
    names = ("ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
    return {name: round((after[name] - before[name]) * 1000 / seconds, 2) for name in names}


def measure_pages(count: int, tree_size: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        made: dict[str, str] = {}

        async def prepare(runtime: Runtime) -> None:
            made["root"] = await synthesize(runtime, count, tree_size)

        with serve(Path(folder), prepare) as served, sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            runs_page = page_figures(page, f"{served.url}/runs", rounds)
            tree_page = page_figures(page, f"{served.url}/runs/{made['root']}", rounds)
            rows = page.locator("#wf-rows > tr").count()
            ticking = ticking_cost(page)
            browser.close()
    return {"runs_page": runs_page, "tree_page": tree_page, "tree_rows": rows, "ticking": ticking}


@dataclass
class Received:
    """What a page received after it loaded: event-stream messages and fetched fragments."""

    messages: list[int] = field(default_factory=list)  # bytes of each message as it travels
    fetches: list[int] = field(default_factory=list)  # bytes of each fragment over the wire

    def clear(self) -> None:
        self.messages.clear()
        self.fetches.clear()

    def per_change(self, changes: int) -> dict[str, float]:
        stream, fetched = sum(self.messages), sum(self.fetches)
        return {
            "changes": changes,
            "messages": len(self.messages),
            "fetches": len(self.fetches),
            "stream_bytes": stream,
            "fetched_bytes": fetched,
            "bytes_per_change": round((stream + fetched) / max(changes, 1), 1),
            "bytes_per_message": round(stream / max(len(self.messages), 1), 1),
        }


def listen(page: Page) -> Received:
    received = Received()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    urls: dict[str, str] = {}

    def sent(event: dict[str, Any]) -> None:
        urls[event["requestId"]] = event["request"]["url"]

    def finished(event: dict[str, Any]) -> None:
        if "part=" in urls.get(event["requestId"], ""):
            received.fetches.append(int(event["encodedDataLength"]))

    def message(event: dict[str, Any]) -> None:
        text = f"id: {event['eventId']}\nevent: {event['eventName']}\ndata: {event['data']}\n\n"
        received.messages.append(len(text.encode()))

    cdp.on("Network.requestWillBeSent", sent)
    cdp.on("Network.loadingFinished", finished)
    cdp.on("Network.eventSourceMessageReceived", message)
    return received


PAGE_BYTES = "performance.getEntriesByType('navigation')[0].transferSize"


def measure_live(count: int, fan_out: int) -> dict[str, Any]:
    """Bytes the open pages received per run change while real runs went by."""
    with tempfile.TemporaryDirectory() as folder:

        async def prepare(runtime: Runtime) -> None:
            await register_hello(runtime)
            await runtime.start()

        with serve(Path(folder), prepare, slots=SLOTS) as served, sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            service = served.runtime.service
            figures: dict[str, Any] = {}
            # the runs page: each run is new to it, then changes status twice
            page = browser.new_page()
            received = listen(page)
            page.goto(f"{served.url}/runs", wait_until="load")
            received.clear()
            started = [
                served.call(service.create_run(WS, "hello/square", [n])) for n in range(count)
            ]
            for run in started:
                served.call(service.wait_run(WS, run.id, 120))
            page.wait_for_timeout(1500)
            figures["runs_page"] = received.per_change(count * 3)  # pending, running, succeeded
            figures["runs_page_bytes"] = page.evaluate(PAGE_BYTES)
            page.close()
            # a run's page while its tree fans out (it waits behind sleepers until the page is open)
            for _ in range(SLOTS):
                served.call(service.create_run(WS, "hello/sleeper", {"seconds": 2}))
            numbers = list(range(fan_out))
            root = served.call(service.create_run(WS, "hello/sum_of_squares", [numbers]))
            page = browser.new_page()
            received = listen(page)
            page.goto(f"{served.url}/runs/{root.id}", wait_until="load")
            done = served.call(service.wait_run(WS, root.id, 300))
            assert done.status is RunStatus.SUCCEEDED, done.error
            page.wait_for_timeout(1500)
            tree = served.call(service.tree_history(WS, root.id, 10_000))
            figures["run_page"] = received.per_change(len(tree.runs) * 3)
            figures["run_page_bytes"] = page.evaluate(PAGE_BYTES)
            browser.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description="The dashboard under load (docs/dashboard.md).")
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the list")
    parser.add_argument("--tree", type=int, default=1_000, help="runs in the waterfall's tree")
    parser.add_argument("--rounds", type=int, default=5, help="page loads per figure (median)")
    parser.add_argument("--live-runs", type=int, default=30, help="runs started for live updates")
    parser.add_argument("--fan-out", type=int, default=30, help="children of the live tree")
    args = parser.parse_args()
    pages = measure_pages(args.runs, args.tree, args.rounds)
    live = measure_live(args.live_runs, args.fan_out)
    print(json.dumps({"pages": pages, "live": live}, indent=2))


if __name__ == "__main__":
    main()
