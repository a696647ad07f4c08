"""Flow runs in the dashboard's pages over an in-memory engine: the step timeline, its live
fragment, paused runs, and flows marked in the lists."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta

import httpx
import pytest

from app.dashboard.live import run_payload
from core.domain import AttemptOutcome, Page, RunStatus, TaskInfo
from scheduler.flows.tables import StepInfo, StepStatus, StepType
from scheduler.runs.catalog import TaskFilter
from tests.unit.app.app_fakes import (
    T0,
    FakeRuntime,
    fake_app,
    make_attempt,
    make_run,
    make_step,
    make_task,
)

pytestmark = pytest.mark.anyio


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


FLOW_TASK = replace(make_task("order"), id="tsk-flow", kind="flow")
STEPS = [
    make_step(1, StepType.INLINE, StepStatus.SUCCEEDED, started_at=at(1), completed_at=at(2)),
    make_step(
        2,
        StepType.DETACHED,
        StepStatus.SUCCEEDED,
        name="charge",
        started_at=at(2),
        completed_at=at(3),
        child_run_id="trn-child0001",
    ),
    make_step(
        3, StepType.SLEEP, StepStatus.RUNNING, name="sleep", started_at=at(3), wake_at=at(63)
    ),
]


@pytest.fixture
def runtime() -> FakeRuntime:
    fake = FakeRuntime()
    paused = make_attempt(0, AttemptOutcome.PAUSED, started_at=at(0.5), ended_at=at(3))
    fake.service.runs["trn-flow"] = make_run(
        "trn-flow",
        RunStatus.PENDING,
        task_id="tsk-flow",
        task_name="order",
        attempts=(paused,),
        not_before=at(63),
        started_at=at(0.5),
    )
    fake.service.runs["trn-task"] = make_run("trn-task")
    service = fake.service

    async def list_tasks(
        workspace_id: str,
        *,
        workflow_id: str | None,
        cursor: str | None,
        limit: int,
        task_filter: TaskFilter | None = None,
    ) -> Page[TaskInfo]:
        service.calls.append(("list_tasks", task_filter))
        every = [make_task(), FLOW_TASK]
        if task_filter is not None and task_filter.task_ids:
            every = [t for t in every if t.id in task_filter.task_ids]
        if task_filter is not None and task_filter.kinds:
            every = [t for t in every if t.kind in task_filter.kinds]
        return Page(every[:limit], None)

    async def flow_steps(workspace_id: str, run_id: str) -> list[StepInfo]:
        service.calls.append(("flow_steps", run_id))
        return STEPS if run_id == "trn-flow" else []

    service.list_tasks = list_tasks  # type: ignore[method-assign]
    service.flow_steps = flow_steps  # type: ignore[method-assign]
    return fake


@pytest.fixture
async def http(runtime: FakeRuntime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fake_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8120") as client:
        yield client


def rows_of(page: str) -> list[str]:
    body = page[
        page.index('id="steps-rows"') : page.index("</tbody>", page.index('id="steps-rows"'))
    ]
    return body.split('<tr data-key="step-')[1:]


async def test_a_paused_flow_runs_page_draws_its_steps_and_says_when_it_wakes(
    http: httpx.AsyncClient,
) -> None:
    page = (await http.get("/runs/trn-flow")).text
    head = page[page.index('id="run-status"') :]
    assert head.startswith(
        'id="run-status"><span class="status status-paused" data-status="paused"'
    )
    assert 'Paused <span class="muted wakes">— wakes at <time datetime="2026-11-25T21:19:11' in head
    assert "<dt>Wakes at</dt><dd>2026-11-25 21:19:11 UTC</dd>" in page
    assert 'data-fragment="/runs/trn-flow?part=live&amp;steps=1"' in page
    assert '<span class="kind-flow"' in page[page.index("<h1>") : page.index("</h1>")]
    table = page[page.index('id="steps-table"') :]
    assert table.startswith(
        f'id="steps-table" data-t0="{int(T0.timestamp() * 1000)}" data-span="63000"'
    )
    rows = rows_of(page)
    assert [row.split('"')[0] for row in rows] == ["1", "2", "3"]
    assert '<rect class="seg-ok" x="1000" y="1" width="1000" height="8"/>' in rows[0]
    assert '<a href="/runs/trn-child0001" title="trn-child0001">task run <code>…hild0001' in rows[1]
    assert '<rect class="seg-sleep" x="3000" y="1" width="60000" height="8"/>' in rows[2]
    assert 'data-step-status="sleeping">Sleeping</span>' in rows[2]
    assert "wakes at <time" in rows[2] and "2026-11-25 21:19:11 UTC</time>" in rows[2]
    assert "<title>sleeping 1 min 0 s; wakes at 2026-11-25 21:19:11 UTC</title>" in rows[2]
    # the legend explains the kinds drawn, and only those
    legend = page[
        page.index('id="steps-legend"') : page.index("</ul>", page.index('id="steps-legend"'))
    ]
    assert legend.count("<li>") == 2 and "succeeded" in legend and "asleep" in legend
    # the tree's summary counts it as paused, not pending
    summary = page[page.index('id="wf-summary"') :].split("</p>")[0]
    assert 'data-status="paused">Paused</span> 1' in summary and "Pending" not in summary
    # the run's row of the waterfall: paused too, its sleep drawn to the wake time
    tree = page[page.index('id="wf-rows"') :]
    assert 'data-status="paused"' in tree.split("</tr>")[0]
    assert '<rect class="seg-paused" x="500" y="1"' in tree.split("</tr>")[0]
    assert '<rect class="seg-sleep" x="3000" y="1"' in tree.split("</tr>")[0]


async def test_the_live_fragment_of_a_flow_carries_its_steps(
    http: httpx.AsyncClient, runtime: FakeRuntime
) -> None:
    fragment = (await http.get("/runs/trn-flow", params={"part": "live", "only": "trn-x"})).text
    assert 'id="flow-steps" data-part' not in fragment  # its page did not say it is a flow
    runtime.service.calls.clear()
    fragment = (
        await http.get("/runs/trn-flow", params={"part": "live", "only": "trn-x", "steps": "1"})
    ).text
    assert '<section aria-labelledby="steps-title" id="flow-steps" data-part>' in fragment
    assert len(rows_of(fragment)) == 3
    assert 'id="run-head"' not in fragment  # the run itself did not change
    assert ("flow_steps", "trn-flow") in runtime.service.calls
    assert not [c for c in runtime.service.calls if c[0] == "list_tasks"]  # no kind read


async def test_a_tasks_run_page_reads_no_steps(
    http: httpx.AsyncClient, runtime: FakeRuntime
) -> None:
    page = (await http.get("/runs/trn-task")).text
    assert 'id="flow-steps"' not in page and 'class="kind-flow"' not in page
    assert 'data-fragment="/runs/trn-task?part=live"' in page
    assert ("flow_steps", "trn-task") not in runtime.service.calls


async def test_the_runs_list_marks_flows_and_paused_runs(
    http: httpx.AsyncClient, runtime: FakeRuntime
) -> None:
    page = (await http.get("/runs", params={"task_kind": "flow"})).text
    flow_row = page[page.index('<tr data-run-id="trn-flow">') :].split("</tr>")[0]
    task_row = page[page.index('<tr data-run-id="trn-task">') :].split("</tr>")[0]
    assert 'hello/order <span class="kind-flow"' in flow_row
    assert 'data-status="paused"' in flow_row and "wakes at" in flow_row
    assert "kind-flow" not in task_row and 'data-status="succeeded"' in task_row
    listed = [c[1][0] for c in runtime.service.calls if c[0] == "list"]
    assert listed[0].kinds == ("flow",)
    assert '<option value="flow" selected>flows only</option>' in page
    assert 'id="task-kind-switch">Flow runs only. <a href="/runs">Show task runs too</a>' in page
    rows = (await http.get("/runs", params={"part": "rows", "only": "trn-flow"})).text
    assert '<span class="kind-flow"' in rows


async def test_the_tasks_list_marks_flows(http: httpx.AsyncClient) -> None:
    page = (await http.get("/tasks")).text
    order = page[page.index('<a href="/tasks/hello/order">') :].split("</th>")[0]
    square = page[page.index('<a href="/tasks/hello/square">') :].split("</th>")[0]
    assert (
        '<span class="kind-flow" title="A flow: its steps are recorded and replayed">flow' in order
    )
    assert "kind-flow" not in square


def test_a_paused_runs_event_says_when_it_wakes(runtime: FakeRuntime) -> None:
    payload = run_payload(runtime.service.runs["trn-flow"])
    assert payload["status"] == "pending"
    assert payload["wakesAt"] == int((T0 + timedelta(seconds=63)).timestamp() * 1000)
    assert run_payload(runtime.service.runs["trn-task"])["wakesAt"] is None
    assert json.dumps(payload)  # what the stream sends
