"""Flow runs of real workers in the dashboard's pages: the step timeline, a paused run, flows
marked and filtered in the lists (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from app.dashboard.flow_runs import paused_until
from app.server import create_app
from core.domain import RunInfo, RunStatus
from scheduler.runtime import Runtime
from tests.integration.engine_fixtures import WS, open_engine, run_to_end

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RECT = re.compile(r'<rect class="seg-(\w+)" x="(-?\d+)" y="1" width="(\d+)"')


@asynccontextmanager
async def dashboard(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime, anonymous_workspace=WS, sse_ping_seconds=5.0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8120") as http:
        yield http


def step_rows(page: str) -> dict[int, str]:
    """The timeline's rows by seq."""
    start = page.index('<tbody id="steps-rows">')
    body = page[start : page.index("</tbody>", start)]
    rows = body.split('<tr data-key="step-')[1:]
    return {int(row.split('"')[0]): row for row in rows}


def kinds(row: str) -> list[str]:
    return [m.group(1) for m in RECT.finditer(row)]


def row_of(page: str, run_id: str) -> str:
    return page[page.index(f'<tr data-run-id="{run_id}">') :].split("</tr>")[0]


def ms(at: datetime, t0: datetime) -> int:
    return int((at.replace(tzinfo=UTC) - t0.replace(tzinfo=UTC)).total_seconds() * 1000)


async def test_a_flow_runs_page_draws_its_steps_on_a_time_axis(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, "flows", database_url=database_url) as runtime:
        run = await run_to_end(runtime, "wf/every_step", [5])
        assert run.status is RunStatus.SUCCEEDED, run.error
        steps = await runtime.service.flow_steps(WS, run.id)
        async with dashboard(runtime) as http:
            page = (await http.get(f"/runs/{run.id}")).text
            assert '<span class="kind-flow"' in page[page.index("<h1>") : page.index("</h1>")]
            assert f'data-fragment="/runs/{run.id}?part=live&amp;steps=1"' in page
            rows = step_rows(page)
            assert sorted(rows) == [1, 2, 3, 4]
            assert [
                rows[seq].split('class="step-row ')[1].split('"')[0] for seq in (1, 2, 3, 4)
            ] == ["step-inline", "step-detached", "step-sleep", "step-inline"]
            assert kinds(rows[1]) == ["ok"] and kinds(rows[2]) == ["ok"]
            assert kinds(rows[3])[0] == "sleep"
            # flaky fails twice in place, then succeeds: two red tries, the wait, then green
            assert kinds(rows[4]) in (
                ["failed", "backoff", "failed", "ok"],
                ["failed", "failed", "ok"],
            )
            assert '<td class="wf-attempts">2</td>' in rows[4]
            child = steps[1].child_run_id
            assert child is not None
            assert f'<a href="/runs/{child}" title="{child}">task run' in rows[2]
            # the sleep is drawn from when it was reached to its wake time, which is written
            sleep = steps[2]
            assert sleep.wake_at is not None
            table = page[page.index('id="steps-table"') :]
            span = int(table.split('data-span="')[1].split('"')[0])
            x = ms(sleep.started_at, run.created_at)
            width = max(ms(sleep.wake_at, run.created_at) - x, int(span * 0.002), 1)
            assert f'<rect class="seg-sleep" x="{x}" y="1" width="{width}" height="8"/>' in rows[3]
            wake = sleep.wake_at.replace(tzinfo=UTC)
            assert f'woke at <time datetime="{wake.isoformat()}">' in rows[3]
            assert 'data-step-status="woke">Woke</span>' in rows[3]
            # the axis ends with the last step: every bar is closed
            assert "data-open" not in page[page.index('id="steps-table"') : page.index("</table>")]
            assert span == max(ms(s.completed_at or s.started_at, run.created_at) for s in steps)
            # the accessible table of the steps is kept, folded
            assert (
                "<summary>The steps as a table, with their times and failed tries</summary>" in page
            )
            assert "RuntimeError: flaky failure 11" in page

            fragment = (
                await http.get(
                    f"/runs/{run.id}", params={"part": "live", "steps": "1", "only": child}
                )
            ).text
            assert 'id="flow-steps" data-part' in fragment and len(step_rows(fragment)) == 4

            plain = (await http.get(f"/runs/{child}")).text
            assert 'id="flow-steps"' not in plain and 'class="kind-flow"' not in plain

            flows = (await http.get("/runs", params={"task_kind": "flow", "kind": "all"})).text
            assert 'class="kind-flow"' in row_of(flows, run.id)
            assert f'data-run-id="{child}"' not in flows
            tasks = (await http.get("/runs", params={"task_kind": "task", "kind": "all"})).text
            assert 'class="kind-flow"' not in row_of(tasks, child)
            assert f'data-run-id="{run.id}"' not in tasks

            listed = (await http.get("/tasks")).text
            every = listed[listed.index('<a href="/tasks/wf/every_step">') :].split("</th>")[0]
            add_one = listed[listed.index('<a href="/tasks/wf/add_one">') :].split("</th>")[0]
            assert 'class="kind-flow"' in every and 'class="kind-flow"' not in add_one


async def until_paused(runtime: Runtime, run_id: str) -> RunInfo:
    """The run once it sleeps (each wait ends at one of its changes)."""
    async with asyncio.timeout(60):
        while paused_until(run := await runtime.service.wait_run(WS, run_id, 1.0)) is None:
            assert not run.status.terminal, run.error
    return run


async def test_a_sleeping_flow_is_paused_until_its_wake_time(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, "flows", database_url=database_url) as runtime:
        created = await runtime.service.create_run(WS, "wf/sleeps_long", [1])
        run = await until_paused(runtime, created.id)
        assert run.not_before is not None
        wakes = run.not_before.replace(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        async with dashboard(runtime) as http:
            page = (await http.get(f"/runs/{run.id}")).text
            status = page[page.index('<dd id="run-status">') :].split("</dd>")[0]
            assert 'data-status="paused"' in status and "— wakes at " in status
            assert wakes in status and "Pending" not in status
            rows = step_rows(page)
            assert kinds(rows[1]) == ["ok"] and kinds(rows[2]) == ["sleep"]
            assert 'data-step-status="sleeping">Sleeping</span>' in rows[2]
            assert "wakes at <time" in rows[2] and wakes in rows[2]
            listed = (await http.get("/runs")).text
            row = row_of(listed, run.id)
            assert 'data-status="paused"' in row and wakes in row

            await runtime.service.cancel_run(WS, run.id)
            done = await runtime.service.get_run(WS, run.id)
            assert done.status is RunStatus.CANCELED and done.completed_at is not None
            page = (await http.get(f"/runs/{run.id}")).text
            assert 'data-status="canceled"' in page[page.index('<dd id="run-status">') :]
            # the sleep is drawn up to the cancellation, not to its wake time
            [sleep] = [s for s in await runtime.service.flow_steps(WS, run.id) if s.seq == 2]
            x = ms(sleep.started_at, done.created_at)
            end = ms(done.completed_at, done.created_at)
            [drawn] = [m for m in RECT.finditer(step_rows(page)[2])]
            assert (drawn.group(1), int(drawn.group(2))) == ("sleep", x)
            assert int(drawn.group(3)) == end - x
