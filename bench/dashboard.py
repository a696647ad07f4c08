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
engine writes; the app serving them is the real one (uvicorn on loopback).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import Connection, insert

from app.server import create_app
from core.domain import RunStatus, TaskInfo
from core.ids import new_id
from core.settings import LimitSettings, Settings
from scheduler.runs.rows import attempt_events, attempts, runs
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime

T = TypeVar("T")
WS = DEFAULT_WORKSPACE_ID
HELLO = Path(__file__).resolve().parents[1] / "examples" / "hello"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
Prepare = Callable[[Runtime], Awaitable[None]]


@dataclass
class Served:
    url: str
    runtime: Runtime
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 300) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextmanager
def serve(data_dir: Path, prepare: Prepare) -> Iterator[Served]:
    """The engine and its app on a loopback port, in a thread of their own."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def run_server() -> None:
        settings = Settings(data_dir=data_dir, limits=LimitSettings(max_concurrency=4))
        runtime = await Runtime.open(settings)
        await prepare(runtime)
        app = create_app(runtime, anonymous_workspace=WS)
        config = uvicorn.Config(app, port=0, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        box["server"] = server
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        box["served"] = Served(f"http://127.0.0.1:{port}", runtime, asyncio.get_running_loop())
        ready.set()
        await serving
        await runtime.close()

    thread = threading.Thread(target=lambda: asyncio.run(run_server()), daemon=True)
    thread.start()
    if not ready.wait(120):
        raise RuntimeError("the server did not start")
    try:
        yield box["served"]
    finally:
        box["server"].should_exit = True
        thread.join(30)


async def _register(runtime: Runtime) -> dict[str, TaskInfo]:
    command = "conveyor-worker main:app"
    version = await runtime.register_workflow(HELLO, slug="hello", start_command=command)
    assert version.task_names, version.message
    return {n: await runtime.service.get_task(WS, f"hello/{n}") for n in version.task_names}


@dataclass
class Rows:
    """Rows of runs, attempts and slot events, as the engine writes them."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def run(
        self,
        task: TaskInfo,
        at: datetime,
        *,
        root: str | None = None,
        parent: str | None = None,
        ended: datetime | None = None,
    ) -> str:
        run_id = new_id("trn", now_ms=int(at.timestamp() * 1000))
        status = RunStatus.SUCCEEDED if ended else RunStatus.RUNNING
        self.runs.append(
            {
                "id": run_id,
                "workspace_id": WS,
                "task_id": task.id,
                "task_name": task.name,
                "workflow_id": task.workflow_id,
                "workflow_slug": task.workflow_slug,
                "version_id": task.version_id,
                "status": status.value,
                "parent_id": parent,
                "parent_attempt": 0 if parent else None,
                "root_id": root or run_id,
                "awaited": parent is not None,
                "input_json": "[3]",
                "output_json": "[9]" if ended else None,
                "attempt_count": 1,
                "lost_count": 0,
                "created_at": at,
                "started_at": at,
                "completed_at": ended,
            }
        )
        return run_id

    def attempt(
        self, run_id: str, number: int, start: datetime, end: datetime | None, outcome: str = "ok"
    ) -> str:
        attempt_id = new_id("att")
        self.attempts.append(
            {
                "id": attempt_id,
                "run_id": run_id,
                "workspace_id": WS,
                "number": number,
                "state": "ended" if end else "running",
                "outcome": outcome if end else None,
                "waiting": False,
                "executor": "local",
                "plan": "standard",
                "enqueued_at": start,
                "started_at": start,
                "ended_at": end,
                "log_key": f"logs/{run_id}/{number}.log",
                "compute_seconds": (end - start).total_seconds() if end else None,
                "cost_usd": 0.00001 if end else None,
                "exit_code": 0 if end else None,
            }
        )
        return attempt_id

    def event(self, attempt_id: str, kind: str, at: datetime) -> None:
        self.events.append({"attempt_id": attempt_id, "workspace_id": WS, "kind": kind, "at": at})

    def write(self, conn: Connection) -> None:
        conn.execute(insert(runs), self.runs)
        conn.execute(insert(attempts), self.attempts)
        if self.events:
            conn.execute(insert(attempt_events), self.events)


def _tree(rows: Rows, root_task: TaskInfo, leaf_task: TaskInfo, size: int, t0: datetime) -> str:
    """A root, 9 branches and their leaves (1 in 20 retried once); the last leaf still runs."""
    root = rows.run(root_task, t0)
    rows.event(rows.attempt(root, 0, t0, None), "waiting", t0 + timedelta(seconds=0.3))
    branches = 9
    leaves = (size - 1 - branches) // branches
    for b in range(branches):
        at = t0 + timedelta(seconds=0.2 + b * 0.05)
        last = b == branches - 1
        branch_end = None if last else at + timedelta(seconds=60)
        branch = rows.run(root_task, at, root=root, parent=root, ended=branch_end)
        waiting = rows.attempt(branch, 0, at, branch_end)
        rows.event(waiting, "waiting", at + timedelta(seconds=0.1))
        if branch_end:
            rows.event(waiting, "resumed", branch_end - timedelta(seconds=0.1))
        for n in range(leaves):
            queued = at + timedelta(seconds=0.1 + n * 0.05)
            began = queued + timedelta(seconds=0.4)
            still = last and n == leaves - 1
            end = None if still else began + timedelta(seconds=0.5 + (n % 7) * 0.1)
            leaf = rows.run(leaf_task, queued, root=root, parent=branch, ended=end)
            if end is not None and n % 20 == 0:
                failed = began + timedelta(seconds=0.3)
                rows.attempt(leaf, 0, began, failed, "error")
                again = failed + timedelta(seconds=1)
                rows.attempt(leaf, 1, again, again + timedelta(seconds=0.4))
                rows.runs[-1] |= {
                    "completed_at": again + timedelta(seconds=0.4),
                    "attempt_count": 2,
                }
            else:
                rows.attempt(leaf, 0, began, end)
    return root


async def synthesize(runtime: Runtime, count: int, tree_size: int) -> str:
    """`count` finished root runs, and a tree of `tree_size` runs whose root id is returned."""
    tasks = await _register(runtime)
    now = datetime.now(UTC)
    rows = Rows()
    for n in range(count):
        at = now - timedelta(hours=1) + timedelta(milliseconds=300 * n)
        done = at + timedelta(seconds=0.2)
        rows.attempt(rows.run(tasks["square"], at, ended=done), 0, at, done)
    root = _tree(
        rows, tasks["sum_of_squares"], tasks["square"], tree_size, now - timedelta(seconds=90)
    )
    async with runtime.engine.begin() as conn:
        await conn.run_sync(rows.write)
    return root


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
            await _register(runtime)
            await runtime.start()

        with serve(Path(folder), prepare) as served, sync_playwright() as driver:
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
            # a run's page while its tree fans out
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
