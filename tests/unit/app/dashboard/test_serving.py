"""How pages are served: gzip, cacheable static files, the favicon, HTML 404s, the theme."""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from app.dashboard.serving import asset_url
from core.domain import RunStatus
from scheduler.runs.queue import QueueView, Slot
from tests.unit.app.app_fakes import FakeRuntime, fake_app, make_attempt, make_run

pytestmark = pytest.mark.anyio


@pytest.fixture
def runtime() -> FakeRuntime:
    fake = FakeRuntime()
    for n in range(30):
        fake.service.runs[f"trn-{n}"] = make_run(f"trn-{n}", RunStatus.PENDING)
    return fake


@pytest.fixture
async def http(runtime: FakeRuntime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fake_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8120") as client:
        yield client


async def test_pages_are_compressed_and_the_api_is_not(http: httpx.AsyncClient) -> None:
    page = await http.get("/runs", headers={"accept-encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"
    assert "trn-29" in page.text  # httpx decodes it
    raw = await http.get("/runs", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert len(gzip.compress(raw.content)) < len(raw.content) / 3
    api = await http.get("/v1/task-runs", headers={"accept-encoding": "gzip"})
    assert api.status_code == 200 and "content-encoding" not in api.headers


@pytest.mark.parametrize(
    "name", ["dashboard.css", "dashboard.js", "live.js", "logs.js", "favicon.svg"]
)
async def test_static_files_with_their_hash_are_cached_for_good(
    http: httpx.AsyncClient, name: str
) -> None:
    current = await http.get(asset_url(name))
    assert current.status_code == 200
    assert current.headers["cache-control"] == "public, max-age=31536000, immutable"
    stale = await http.get(f"/dashboard/static/{name}?v=0000")
    assert stale.headers["cache-control"] == "no-cache"
    again = await http.get(
        f"/dashboard/static/{name}", headers={"if-none-match": current.headers["etag"]}
    )
    assert again.status_code == 304


async def test_pages_link_their_assets_with_hashes_and_a_favicon(http: httpx.AsyncClient) -> None:
    page = (await http.get("/runs")).text
    for name in ("dashboard.css", "dashboard.js", "live.js", "logs.js", "favicon.svg"):
        assert asset_url(name) in page
    assert re.search(
        r'<link rel="icon" href="[^"]+favicon.svg\?v=\w+" type="image/svg\+xml">', page
    )
    icon = await http.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert icon.text.startswith("<svg")


async def test_unknown_paths_are_pages_for_browsers_and_json_for_clients(
    http: httpx.AsyncClient,
) -> None:
    browser = await http.get("/nowhere", headers={"accept": "text/html,*/*"})
    assert browser.status_code == 404
    assert browser.headers["content-type"].startswith("text/html")
    assert "There is no page at /nowhere." in browser.text and "Back to runs" in browser.text
    client = await http.get("/nowhere")
    assert client.status_code == 404
    assert client.json() == {"message": "no route for /nowhere", "code": "not_found"}
    api = await http.get("/v1/nowhere", headers={"accept": "text/html"})
    assert api.headers["content-type"].startswith("application/json")


async def test_the_chosen_theme_is_drawn_by_the_server(http: httpx.AsyncClient) -> None:
    system = (await http.get("/runs")).text
    assert '<html lang="en">' in system  # no choice: the system's preference applies
    http.cookies.set("conveyor_theme", "dark")
    assert '<html lang="en" data-theme="dark">' in (await http.get("/runs")).text
    http.cookies.set("conveyor_theme", "<script>")
    assert '<html lang="en">' in (await http.get("/runs")).text


async def test_the_queue_page_says_why_each_run_waits(http: httpx.AsyncClient) -> None:
    page = await http.get("/queue")
    assert page.status_code == 200
    assert page.text.count('data-reason="workspace_limit"') == 30
    assert "Workspace limit: every slot is in use." in page.text
    assert 'data-live="queue"' in page.text
    fragment = await http.get("/queue", params={"part": "live"})
    assert 'id="queue-body"' in fragment.text and "<nav" not in fragment.text


async def test_a_slot_held_without_capacity_says_why(
    http: httpx.AsyncClient, runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = "no node has room: cpu exhausted (3 allocations blocked)"
    attempt = make_attempt(0, None, waiting_reason=reason)
    held = make_run("trn-held", RunStatus.RUNNING, attempts=(attempt,))
    view = QueueView(2, 1, 0, 0, 0, None, None, [], [], [Slot(held, attempt)])

    async def queue(workspace_id: str, shown: int = 100) -> QueueView:
        return view

    monkeypatch.setattr(runtime.service, "queue", queue)
    page = (await http.get("/queue")).text
    assert f"held, not running yet:</strong> {reason}" in page
    assert "No run waits for a slot." in page
