"""Render's generated flows client (render 1.5.0) drives every flow route of `conveyor dev`;
every answer is parsed into Render's models and held against them field by field."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from render.public_api.api.workflow_flows import (
    cancel_flow_run,
    get_flow,
    get_flow_run,
    get_flow_run_step,
    list_flow_run_steps,
    list_flow_runs,
    list_flows,
    start_flow_run,
)
from render.public_api.api.workflow_tasks import get_task_run
from render.public_api.client import Client
from render.public_api.models.error import Error
from render.public_api.models.flow import Flow
from render.public_api.models.flow_run import FlowRun
from render.public_api.models.flow_run_details import FlowRunDetails
from render.public_api.models.flow_run_error_details import FlowRunErrorDetails
from render.public_api.models.flow_run_error_details_code import FlowRunErrorDetailsCode
from render.public_api.models.flow_run_error_details_kind import FlowRunErrorDetailsKind
from render.public_api.models.flow_run_status import FlowRunStatus
from render.public_api.models.flow_run_step_details import FlowRunStepDetails
from render.public_api.models.start_flow_run import StartFlowRun
from render.public_api.models.task_run_details import TaskRunDetails

from app.cli.main import main
from tests.integration.dev_server import DevServer, dev_server
from tests.integration.engine_fixtures import PASS_SCRATCH_ENV, copy_workflow
from tests.integration.render_models import problems_of

TERMINAL = {FlowRunStatus.SUCCEEDED, FlowRunStatus.FAILED, FlowRunStatus.CANCELED}


@pytest.fixture
def server(tmp_path: Path, scratch: Path) -> Iterator[DevServer]:
    workflow = copy_workflow("flows", tmp_path)
    env = {"ENGINE_SCRATCH": str(scratch), **PASS_SCRATCH_ENV}
    with dev_server(workflow, tmp_path / "data", name="wf", env=env) as running:
        yield running


@pytest.fixture
def client(server: DevServer) -> Iterator[Client]:
    with Client(base_url=f"{server.url}/v1") as generated:
        yield generated


def fits(value: Any) -> Any:
    """The value, once it has passed the models check."""
    assert problems_of(value) == []
    return value


def start(client: Client, flow: str, input: Any) -> FlowRun:
    started = start_flow_run.sync(
        client=client, body=StartFlowRun.from_dict({"flow": flow, "input": input})
    )
    assert isinstance(started, FlowRun), started
    fits(started)
    return started


def until(client: Client, run_id: str, statuses: set[FlowRunStatus]) -> FlowRunDetails:
    deadline = time.monotonic() + 60
    seen: list[FlowRunStatus] = []
    while time.monotonic() < deadline:
        details = get_flow_run.sync(flow_run_id=run_id, client=client)
        assert isinstance(details, FlowRunDetails), details
        if details.status in statuses:
            fits(details)
            return details
        seen.append(details.status)
        time.sleep(0.1)
    raise AssertionError(f"flow run {run_id} not {statuses} after 60 s: {seen[-1:]}")


def test_every_flow_route_answers_in_renders_shapes(
    client: Client, server: DevServer, scratch: Path
) -> None:
    flows = fits(list_flows.sync(client=client, limit=100))
    names = sorted(item.flow.name for item in flows)
    assert names == [
        "changes_between_attempts",
        "doubles_twice",
        "every_step",
        "fails_until_fixed",
        "gathers",
        "killed_mid_step",
        "large_payloads",
        "naps",
        "sleeps_beside_a_child",
        "sleeps_long",
        "sleeps_until",
        "waits_for_release",
    ]
    [every] = [item.flow for item in flows if item.flow.name == "every_step"]
    assert every.id.startswith("flw-")
    assert isinstance(fits(get_flow.sync(flow_id=every.id, client=client)), Flow)
    assert isinstance(get_flow.sync(flow_id="flw-unknown", client=client), Error)
    first = fits(list_flows.sync(client=client, limit=2))
    rest = fits(list_flows.sync(client=client, limit=100, cursor=first[-1].cursor))
    assert [i.flow.name for i in first + rest] == [i.flow.name for i in flows]
    assert [
        i.flow.name for i in fits(list_flows.sync(client=client, flow_slug=["wf/every_step"]))
    ] == ["every_step"]

    started = start(client, "wf/every_step", [5])
    assert started.id.startswith("frn-") and started.flow_id == every.id
    run = until(client, started.id, TERMINAL)
    assert run.status is FlowRunStatus.SUCCEEDED
    assert run.input_ == [5]
    assert run.results == [{"a": 10, "b": 11, "c": 111}]
    assert [a.status for a in run.attempts] == [FlowRunStatus.PAUSED, FlowRunStatus.SUCCEEDED]

    steps = fits(list_flow_run_steps.sync(flow_run_id=run.id, client=client))
    assert [(s.step.seq, s.step.type_.value, s.step.name) for s in steps] == [
        (1, "inline", "double"),
        (2, "detached", "add_one"),
        (3, "sleep", "sleep"),
        (4, "inline", "flaky"),
    ]
    page = fits(list_flow_run_steps.sync(flow_run_id=run.id, client=client, limit=3))
    after = fits(
        list_flow_run_steps.sync(flow_run_id=run.id, client=client, cursor=page[-1].cursor)
    )
    assert [s.step.seq for s in page + after] == [1, 2, 3, 4]
    assert steps[2].step.wake_at is not None
    last = get_flow_run_step.sync(flow_run_id=run.id, step_seq=4, client=client)
    assert isinstance(last, FlowRunStepDetails)
    fits(last)
    assert last.result == 111 and last.input_ == [11]
    assert [(a.attempt, a.flow_run_attempt, a.error) for a in last.attempts] == [
        (1, 1, "RuntimeError: flaky failure 11"),
        (2, 1, "RuntimeError: flaky failure 11"),
    ]
    child_id = steps[1].step.child_task_run_id
    assert isinstance(child_id, str)
    child = get_task_run.sync(task_run_id=child_id, client=client)
    assert isinstance(child, TaskRunDetails) and child.results == [11]
    assert isinstance(get_flow_run_step.sync(flow_run_id=run.id, step_seq=9, client=client), Error)

    listed = fits(list_flow_runs.sync(client=client, flow_id=[every.id]))
    assert [item.flow_run.id for item in listed] == [run.id]
    assert (
        fits(
            list_flow_runs.sync(
                client=client, flow_slug=["wf/every_step"], status=[FlowRunStatus.SUCCEEDED]
            )
        )[0].flow_run.id
        == run.id
    )
    assert list_flow_runs.sync(client=client, status=[FlowRunStatus.FAILED]) == []
    # Render's legacy `completed` is `succeeded`; `paused` shows no finished run
    legacy = httpx.get(f"{server.url}/v1/flow-runs", params={"status": "completed"}).json()
    assert [item["flowRun"]["id"] for item in legacy] == [run.id]
    assert httpx.get(f"{server.url}/v1/flow-runs", params={"status": "paused"}).json() == []
    # the detached step's task run is no flow run
    assert [i.flow_run.id for i in fits(list_flow_runs.sync(client=client, limit=100))] == [run.id]


def test_a_sleeping_flow_shows_paused_and_cancels_with_its_children(client: Client) -> None:
    started = start(client, "wf/sleeps_long", [1])
    paused = until(client, started.id, {FlowRunStatus.PAUSED})
    assert [a.status for a in paused.attempts] == [FlowRunStatus.PAUSED]
    listed = fits(list_flow_runs.sync(client=client, status=[FlowRunStatus.PAUSED]))
    assert [item.flow_run.id for item in listed] == [started.id]
    assert cancel_flow_run.sync_detailed(flow_run_id=started.id, client=client).status_code == 204
    assert until(client, started.id, TERMINAL).status is FlowRunStatus.CANCELED


def test_a_determinism_error_has_renders_details(client: Client, scratch: Path) -> None:
    started = start(client, "wf/changes_between_attempts", [2])
    until(client, started.id, {FlowRunStatus.PAUSED})
    (scratch / "changed").touch()
    failed = until(client, started.id, TERMINAL)
    assert failed.status is FlowRunStatus.FAILED
    details = failed.error_details
    assert isinstance(details, FlowRunErrorDetails)
    assert (details.code, details.kind, details.seq, details.expected, details.actual) == (
        FlowRunErrorDetailsCode.FLOW_DETERMINISM_ERROR,
        FlowRunErrorDetailsKind.TYPE,
        2,
        "inline:first",
        "inline:last",
    )
    assert details.flow_attempt == 1
    assert "step 2 was recorded as inline:first" in str(failed.error)


def test_bad_requests_are_errors(client: Client) -> None:
    task = start_flow_run.sync(
        client=client, body=StartFlowRun.from_dict({"flow": "wf/add_one", "input": [1]})
    )
    assert isinstance(task, Error) and "is a task" in str(task.message)
    missing = start_flow_run.sync(
        client=client, body=StartFlowRun.from_dict({"flow": "wf/nope", "input": []})
    )
    assert isinstance(missing, Error)
    assert isinstance(get_flow_run.sync(flow_run_id="frn-unknown", client=client), Error)
    assert isinstance(get_flow_run.sync(flow_run_id="trn-unknown", client=client), Error)


def test_a_failed_flow_reruns_from_its_failed_step_from_the_cli(
    client: Client, server: DevServer, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = start(client, "wf/fails_until_fixed", [4])
    failed = until(client, started.id, TERMINAL)
    assert failed.status is FlowRunStatus.FAILED and "not fixed yet" in str(failed.error)
    (scratch / "fixed").touch()
    with pytest.raises(SystemExit) as exited:
        main(["--url", server.url, "flows", "rerun", started.id, "--wait", "--timeout", "60"])
    out, err = capsys.readouterr()
    assert (exited.value.code, out) == (0, "9\n"), err
    done = until(client, started.id, TERMINAL)
    assert done.status is FlowRunStatus.SUCCEEDED and done.results == [9]
    assert [a.status for a in done.attempts] == [FlowRunStatus.FAILED, FlowRunStatus.SUCCEEDED]
    assert (scratch / "double.ran").read_text().count("x") == 1, "the succeeded step replayed"
    step = get_flow_run_step.sync(flow_run_id=started.id, step_seq=2, client=client)
    assert isinstance(step, FlowRunStepDetails) and step.result == 9
    assert [(a.attempt, a.flow_run_attempt) for a in step.attempts] == [(1, 0)]
    again = cancel_flow_run.sync_detailed(flow_run_id=started.id, client=client)
    assert again.status_code == 204  # a finished run stays as it is
    with pytest.raises(SystemExit) as refused:
        main(["--url", server.url, "flows", "rerun", started.id])
    assert refused.value.code == 1
    assert "only a failed one is rerun" in capsys.readouterr().err


def test_conveyor_run_wait_runs_a_flow(
    server: DevServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--url", server.url, "run", "wf/naps", "0", "--wait", "--timeout", "60"])
    out, err = capsys.readouterr()
    assert (exited.value.code, out) == (0, '"0"\n'), err
    with pytest.raises(SystemExit) as listed:
        main(["--url", server.url, "tasks"])
    out, _ = capsys.readouterr()
    assert listed.value.code == 0 and "wf/naps" in out and "wf/add_one" in out


def test_the_dashboard_shows_a_flow_runs_steps(client: Client, server: DevServer) -> None:
    started = start(client, "wf/every_step", [5])
    run = until(client, started.id, TERMINAL)
    run_id = "trn-" + run.id.removeprefix("frn-")
    page = httpx.get(f"{server.url}/runs/{run_id}", timeout=30)
    assert page.status_code == 200
    steps = page.text[page.text.index('id="flow-steps"') :]
    rows = steps.split('<tr class="step ')[1:]
    assert [row.split('"')[0] for row in rows] == [
        "step-inline step-succeeded",
        "step-detached step-succeeded",
        "step-sleep step-succeeded",
        "step-inline step-succeeded",
    ]
    child = get_flow_run_step.sync(flow_run_id=run.id, step_seq=2, client=client)
    assert isinstance(child, FlowRunStepDetails) and isinstance(child.child_task_run_id, str)
    assert f'href="/runs/{child.child_task_run_id}"' in rows[1]
    assert "wakes " in rows[2]
    assert "2 failed tries" in rows[3] and "RuntimeError: flaky failure 11" in rows[3]
    plain = httpx.get(f"{server.url}/runs/{child.child_task_run_id}", timeout=30)
    assert plain.status_code == 200 and 'id="flow-steps"' not in plain.text


def test_the_same_idempotency_key_starts_one_flow_run(client: Client) -> None:
    body = {"flow": "wf/naps", "input": [0], "idempotencyKey": "once"}
    first = start_flow_run.sync(client=client, body=StartFlowRun.from_dict(body))
    again = start_flow_run.sync(client=client, body=StartFlowRun.from_dict(body))
    assert isinstance(first, FlowRun) and isinstance(again, FlowRun)
    assert first.id == again.id
    assert len(fits(list_flow_runs.sync(client=client, flow_slug=["wf/naps"]))) == 1


def test_the_dashboard_reruns_a_failed_flow_from_its_failed_step(
    client: Client, server: DevServer, scratch: Path
) -> None:
    started = start(client, "wf/fails_until_fixed", [1])
    assert until(client, started.id, TERMINAL).status is FlowRunStatus.FAILED
    run_id = "trn-" + started.id.removeprefix("frn-")
    (scratch / "fixed").touch()
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        shown = browser.get(f"/runs/{run_id}")
        page = shown.text
        assert 'id="flow-rerun"' in page, (shown.status_code, page[:3000])
        form = page[page.index('id="flow-rerun"') :]
        token = form.split('name="csrf_token" value="')[1].split('"')[0]
        answer = browser.post(
            f"/runs/{run_id}/flow-rerun",
            data={"csrf_token": token},
            headers={"Origin": server.url},
        )
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == f"/runs/{run_id}"
        done = until(client, started.id, TERMINAL)
        assert done.status is FlowRunStatus.SUCCEEDED and done.results == [3]
        assert 'id="flow-rerun"' not in browser.get(f"/runs/{run_id}").text
    assert (scratch / "double.ran").read_text().count("x") == 1
