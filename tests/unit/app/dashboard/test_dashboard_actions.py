"""Rerun, retry from failure, bulk cancel, going to a run by id, live fragments, downloads."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from app.dashboard import present
from core.domain import AttemptOutcome, RunStatus
from tests.unit.app.app_fakes import T0, FakeRuntime, fake_app, make_attempt, make_run

pytestmark = pytest.mark.anyio

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def runtime() -> FakeRuntime:
    fake = FakeRuntime()
    runs = fake.service.runs
    runs["trn-1"] = make_run("trn-1", RunStatus.FAILED, input={"n": 1})
    failed = make_attempt(0, AttemptOutcome.ERROR)
    # trn-1 ─┬─ trn-2 (failed: its child trn-4 failed)
    #        │    └─ trn-4 (failed on its own)
    #        └─ trn-3 (failed on its own)    trn-5 (succeeded)
    for run_id, parent in (("trn-2", "trn-1"), ("trn-3", "trn-1"), ("trn-4", "trn-2")):
        runs[run_id] = make_run(
            run_id,
            RunStatus.FAILED,
            parent_id=parent,
            root_id="trn-1",
            attempts=(failed,),
            input=[run_id],
        )
    runs["trn-5"] = make_run("trn-5", parent_id="trn-1", root_id="trn-1")
    runs["trn-9"] = make_run("trn-9", RunStatus.RUNNING, attempts=(make_attempt(0, None),))
    return fake


@pytest.fixture
async def local(runtime: FakeRuntime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fake_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8120") as http:
        yield http


async def token(http: httpx.AsyncClient) -> str:
    found = CSRF.search((await http.get("/runs")).text)
    assert found
    return found.group(1)


def created(runtime: FakeRuntime) -> list[tuple[str, Any]]:
    return [call[1][1:3] for call in runtime.service.calls if call[0] == "create"]


async def test_rerun_on_the_same_or_the_active_version(
    local: httpx.AsyncClient, runtime: FakeRuntime
) -> None:
    csrf = await token(local)
    same = await local.post("/runs/trn-1/rerun", data={"csrf_token": csrf, "version": "same"})
    assert same.status_code == 303 and same.headers["location"].startswith("/runs/trn-")
    active = await local.post("/runs/trn-3/rerun", data={"csrf_token": csrf, "version": "active"})
    assert active.status_code == 303
    assert created(runtime) == [("hello/square:wfv-1", {"n": 1}), ("hello/square", ["trn-3"])]
    bad = await local.post("/runs/trn-1/rerun", data={"csrf_token": csrf, "version": "newest"})
    assert bad.status_code == 400 and "version must be" in bad.text
    forged = await local.post("/runs/trn-1/rerun", data={"csrf_token": "x", "version": "same"})
    assert forged.status_code == 403
    assert len(created(runtime)) == 2


async def test_retry_the_tree_starts_its_root_again(
    local: httpx.AsyncClient, runtime: FakeRuntime
) -> None:
    csrf = await token(local)
    response = await local.post("/runs/trn-4/retry", data={"csrf_token": csrf, "mode": "tree"})
    assert response.status_code == 303
    assert created(runtime) == [("hello/square", {"n": 1})]  # the root's task and input


async def test_retry_failed_starts_a_run_where_each_failure_started(
    local: httpx.AsyncClient, runtime: FakeRuntime
) -> None:
    csrf = await token(local)
    response = await local.post("/runs/trn-1/retry", data={"csrf_token": csrf, "mode": "failed"})
    assert response.status_code == 303
    # trn-2 and trn-1 failed because a child did; trn-3 and trn-4 failed on their own
    assert created(runtime) == [("hello/square", ["trn-3"]), ("hello/square", ["trn-4"])]
    new_ids = [call[1] for call in runtime.service.calls if call[0] == "create"]
    assert response.headers["location"].startswith("/runs?id=trn-")
    listed = await local.get(response.headers["location"])
    assert listed.status_code == 200 and "Showing 2 chosen runs" in listed.text
    assert len(new_ids) == 2
    below = await local.post("/runs/trn-2/retry", data={"csrf_token": csrf, "mode": "failed"})
    assert below.status_code == 303 and created(runtime)[-1] == ("hello/square", ["trn-4"])


async def test_only_failed_runs_are_retried(local: httpx.AsyncClient, runtime: FakeRuntime) -> None:
    csrf = await token(local)
    response = await local.post("/runs/trn-5/retry", data={"csrf_token": csrf, "mode": "tree"})
    assert response.status_code == 409 and "only a failed run" in response.text
    assert created(runtime) == []


async def test_bulk_cancel_cancels_the_unfinished_chosen_runs(
    local: httpx.AsyncClient, runtime: FakeRuntime
) -> None:
    csrf = await token(local)
    data = {
        "csrf_token": csrf,
        "back": "/runs?status=running",
        "run": ["trn-9", "trn-5", "trn-missing"],  # trn-5 is finished: left alone
    }
    response = await local.post("/runs/cancel", data=data)
    assert response.status_code == 303
    assert response.headers["location"] == "/runs?status=running&canceled=1"
    assert [c for c in runtime.service.calls if c[0] == "cancel"] == [("cancel", "trn-9")]
    page = await local.get(response.headers["location"])
    assert "1 run cancelled." in page.text
    away = await local.post(
        "/runs/cancel", data={"csrf_token": csrf, "back": "https://evil.example/"}
    )
    assert away.headers["location"] == "/runs?canceled=0"


async def test_go_to_a_run_by_its_id_or_the_start_of_it(
    local: httpx.AsyncClient, runtime: FakeRuntime
) -> None:
    async def go(text: str) -> httpx.Response:
        return await local.get("/runs/go", params={"id": text})

    assert (await go("trn-5")).headers["location"] == "/runs/trn-5"
    assert (await go("  TRN-5 ")).headers["location"] == "/runs/trn-5"
    assert (await go("9")).headers["location"] == "/runs/trn-9"  # the `trn-` may be left out
    several = await go("trn-")
    assert several.headers["location"].startswith("/runs?id=trn-1&id=trn-2")
    missing = await go("trn-zzz")
    assert missing.status_code == 404 and "No run has an id starting with" in missing.text
    assert (await go("bld-123")).headers["location"] == "/builds/bld-123"
    for odd in ("bld-../../x", "trn-1?x=1", "trn-\u00e9"):
        refused = await go(odd)
        assert refused.status_code == 404 and "is not an id" in refused.text
    assert (await go("")).headers["location"] == "/runs"


async def test_rows_fragment_has_only_the_rows_asked_for(
    local: httpx.AsyncClient, runtime: FakeRuntime
) -> None:
    page = await local.get("/runs", params={"part": "rows", "only": "trn-5,trn-9,bogus"})
    assert page.status_code == 200
    assert 'id="run-rows"' in page.text and "<html" not in page.text.split("<table")[0].lower()
    assert re.findall(r'<tr data-run-id="([^"]+)"', page.text) == ["trn-5", "trn-9"]
    filter_call = [c for c in runtime.service.calls if c[0] == "list"][-1][1][0]
    assert filter_call.run_ids == ("trn-5", "trn-9")
    nothing = await local.get("/runs", params={"part": "rows", "only": ""})
    assert "<tr" not in nothing.text


async def test_the_run_page_draws_the_tree_and_one_error(
    local: httpx.AsyncClient, runtime: FakeRuntime
) -> None:
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/app/main.py", line 3, in square\n'
        "    raise ValueError('bad')\n"
        "ValueError: bad\n"
    )
    run = runtime.service.runs["trn-1"]
    runtime.service.runs["trn-1"] = replace(
        run,
        error="ValueError: bad",
        stack_trace=trace,
        attempts=(
            make_attempt(0, AttemptOutcome.ERROR, error="ValueError: bad", stack_trace=trace),
        ),
    )
    page = (await local.get("/runs/trn-1")).text
    assert page.count('class="error-box"') == 1
    assert page.count("Traceback (most recent call last)") == 1  # folded, once
    assert "Its error is shown" in page
    assert re.findall(r'<tr data-run-id="([^"]+)"', page) == [
        "trn-1",
        "trn-2",
        "trn-4",
        "trn-3",
        "trn-5",
    ]
    assert 'data-since="' in page and "Retry from failure" in page and "Rerun" in page
    fragment = await local.get("/runs/trn-1", params={"part": "live", "only": "trn-4"})
    rows = re.findall(r'<tr data-run-id="([^"]+)"', fragment.text)
    assert rows == ["trn-2", "trn-4"]  # and its parent, whose waits change with it
    assert 'id="run-head"' not in fragment.text
    whole = await local.get("/runs/trn-1", params={"part": "live"})
    assert 'id="run-head"' in whole.text and 'id="wf-summary"' in whole.text


async def test_edit_and_run_starts_from_the_run_input(local: httpx.AsyncClient) -> None:
    page = await local.get("/tasks/hello/square", params={"from": "trn-1"})
    assert page.status_code == 200
    assert "{\n  &#34;n&#34;: 1\n}</textarea>" in page.text
    assert 'value="raw" checked' in page.text


async def test_log_download(local: httpx.AsyncClient) -> None:
    response = await local.get("/runs/trn-1/log.txt", params={"attempt": "0"})
    assert response.status_code == 200
    assert response.text == "hello\nworld\n"
    assert response.headers["content-disposition"] == 'attachment; filename="trn-1-attempt-0.log"'


async def test_log_lines_carry_the_time_the_platform_saw_them(local: httpx.AsyncClient) -> None:
    page = (await local.get("/runs/trn-1")).text
    hello_ms, world_ms = 1_796_000_000_250, present.epoch_ms(T0)  # "world\n" came after the
    # clock's last look: it gets the attempt's end
    for text, ms in (("hello", hello_ms), ("world", world_ms)):
        stamp = f'<span class="ts" title="{present.clock(ms, True)}">{present.clock(ms)}</span>'
        assert f'<span class="ln">{stamp}{text}\n</span>' in page
    assert 'data-offset="12"' in page  # following the log goes on from the bytes shown
