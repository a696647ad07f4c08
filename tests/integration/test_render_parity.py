"""Every public call of Render's client (`render` 1.5, sync and async) against `conveyor dev`.

The worker is Render's own SDK, started the documented way (`render-workflows main:app`). Each
answer is parsed by the client's generated models and held against them field by field
(`render_models.problems_of`): nothing missing, nothing of the wrong type, no key beyond
Conveyor's documented additions. docs/render-compatibility.md is the table of these calls.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from render import Render, RenderAsync
from render.client.errors import ClientError, TaskRunError
from render.client.types import ListTaskRunsParams
from render.public_api.api.workflow_tasks import get_task, list_task_runs, list_tasks
from render.public_api.api.workflows import (
    get_workflow,
    get_workflow_version,
    list_workflow_versions,
    list_workflows,
)
from render.public_api.models.error import Error
from render.public_api.models.task import Task
from render.public_api.models.workflow import Workflow
from render.public_api.models.workflow_version import WorkflowVersion

from tests.integration.dev_server import DevServer, dev_server
from tests.integration.engine_fixtures import copy_workflow
from tests.integration.render_models import problems_of

pytestmark = pytest.mark.slow

START = "render-workflows main:app"


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workflow("render1", tmp_path_factory.mktemp("parity"))


@pytest.fixture(scope="module")
def server(workflow: Path) -> Iterator[DevServer]:
    with dev_server(workflow, workflow.parent / "data", start_command=START, name="demo") as dev:
        yield dev


@pytest.fixture(scope="module")
def two_versions(server: DevServer, workflow: Path) -> list[str]:
    """A change to the folder registers a second version (newest first)."""
    main = workflow / "main.py"
    main.write_text(main.read_text() + "\n# a change\n")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        items = httpx.get(f"{server.url}/v1/workflowversions").json()
        if len(items) >= 2 and items[0]["workflowVersion"]["status"] == "ready":
            return [item["workflowVersion"]["id"] for item in items]
        time.sleep(0.2)
    raise AssertionError(f"no second version within 60 s:\n{server.output()}")


@pytest.fixture
def local_dev(server: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RENDER_USE_LOCAL_DEV", "true")
    monkeypatch.setenv("RENDER_LOCAL_DEV_URL", server.url)
    return server.url


@pytest.fixture
def render(local_dev: str) -> Iterator[Render]:
    client = Render()
    yield client
    # the official sync client never closes its connection pool itself
    client.client.internal.get_httpx_client().close()


def fits(value: Any) -> Any:
    """The value, once it has passed the models check."""
    assert problems_of(value) == []
    return value


def test_the_models_check_catches_each_kind_of_drift() -> None:
    from render.public_api.models.task_run import TaskRun

    good = {
        "id": "trn-1",
        "taskId": "tsk-1",
        "status": "succeeded",
        "parentTaskRunId": "",
        "rootTaskRunId": "trn-1",
        "retries": 0,
        "attempts": [],
        "startedAt": "2024-05-01T12:00:00.000000Z",
        "completedAt": "2024-05-01T12:00:01.000000Z",
        "taskSlug": "demo/square",
    }
    assert problems_of(TaskRun.from_dict(good)) == []
    drifted = {**good, "retries": "0", "bogus": 1}
    del drifted["completedAt"]
    assert problems_of(TaskRun.from_dict(drifted)) == [
        "answer.retries: expected int, got '0'",
        "answer: unexpected keys ['bogus']",
    ]
    naive = {**good, "startedAt": "2024-05-01T12:00:00"}
    assert problems_of(TaskRun.from_dict(naive)) == [
        "answer.started_at: datetime.datetime(2024, 5, 1, 12, 0) is not a timezone-aware datetime"
    ]


def test_run_and_start_tasks(render: Render) -> None:
    details = fits(render.workflows.run_task("demo/add_squares", [3, 4]))
    assert (details.status.value, details.results, details.input_) == ("succeeded", [25], [3, 4])
    assert details.completed_at is not None and details.attempts[0].completed_at is not None
    keywords = fits(render.workflows.run_task("demo/greet", {"name": "Ada"}))
    assert keywords.results == ["Hello, Ada!"]
    assert keywords.input_.additional_properties == {"name": "Ada"}

    started = fits(render.workflows.start_task("demo/square", [5], idempotency_key="k-1"))
    again = fits(render.workflows.start_task("demo/square", [5], idempotency_key="k-1"))
    assert again.id == started.id
    fetched = fits(render.workflows.get_task_run(started.id))
    assert fetched.id == started.id and fetched.parent_task_run_id == ""

    with pytest.raises(TaskRunError, match="kaboom"):
        render.workflows.run_task("demo/parent_of_failure", ["kaboom"])
    with pytest.raises(ClientError, match="not found"):
        render.workflows.start_task("demo/no_such_task", [])
    with pytest.raises(ClientError, match="not found"):
        render.workflows.get_task_run("trn-unknown")


def test_children_carry_their_parent_attempt(render: Render) -> None:
    parent = fits(render.workflows.run_task("demo/family", []))
    items = list_task_runs.sync(
        client=render.client.internal, root_task_run_id=[parent.id], limit=10
    )
    assert isinstance(items, list)
    [child] = [fits(i).task_run for i in items if i.task_run.id != parent.id]
    assert (child.parent_task_run_id, child.parent_task_attempt) == (parent.id, 0)
    assert child.root_task_run_id == parent.id


def test_list_task_runs_with_every_filter(render: Render) -> None:
    first = render.workflows.run_task("demo/square", [2])
    second = render.workflows.run_task("demo/square", [3])
    pages = fits(render.workflows.list_task_runs(ListTaskRunsParams(limit=1)))
    assert [item.task_run.id for item in pages] == [second.id]
    following = fits(
        render.workflows.list_task_runs(ListTaskRunsParams(limit=1, cursor=pages[0].cursor))
    )
    assert [item.task_run.id for item in following] == [first.id]
    # ownerId is accepted and ignored: a key sees one workspace
    owned = fits(render.workflows.list_task_runs(ListTaskRunsParams(owner_id=["tea-x"])))
    assert second.id in [item.task_run.id for item in owned]

    task = render.client.internal
    by_slug = fits(list_task_runs.sync(client=task, task_slug=["demo/square"], limit=100))
    assert {i.task_run.id for i in by_slug} >= {first.id, second.id}
    assert all(i.task_run.task_id == second.task_id for i in by_slug)
    by_root = fits(list_task_runs.sync(client=task, root_task_run_id=[first.id]))
    assert [i.task_run.id for i in by_root] == [first.id]
    workflow_id = by_slug[0].task_run.additional_properties["workflowId"]
    version_id = by_slug[0].task_run.additional_properties["workflowVersionId"]
    assert fits(list_task_runs.sync(client=task, workflow_id=[workflow_id], limit=100))
    by_version = fits(list_task_runs.sync(client=task, workflow_version_id=[version_id]))
    assert by_version and list_task_runs.sync(client=task, workflow_version_id=["wfv-x"]) == []


def test_cancel_and_events(render: Render) -> None:
    slow = fits(render.workflows.start_task("demo/slow", [30]))
    done = render.workflows.run_task("demo/square", [6])
    render.workflows.cancel_task_run(slow.id)
    assert fits(render.workflows.get_task_run(slow.id)).status.value == "canceled"
    events = [fits(event) for event in render.workflows.task_run_events([slow.id, done.id])]
    assert {(e.id, e.status.value) for e in events} == {
        (slow.id, "canceled"),
        (done.id, "succeeded"),
    }
    with pytest.raises(ClientError, match="not found"):
        render.workflows.cancel_task_run("trn-unknown")


def test_events_of_an_unknown_run(render: Render, local_dev: str) -> None:
    # Render documents 404 with an Error body here, and Conveyor answers so ...
    answer = httpx.get(f"{local_dev}/v1/task-runs/events", params={"taskRunIds": "trn-unknown"})
    assert answer.status_code == 404
    assert answer.json()["message"] == "task run trn-unknown not found"
    # ... which render 1.5 cannot read: it parses a stream's error body without reading it
    # first, whatever the server sends (docs/render-compatibility.md says how to cope).
    with pytest.raises(httpx.ResponseNotRead):
        list(render.workflows.task_run_events(["trn-unknown"]))


def test_tasks(render: Render, two_versions: list[str]) -> None:
    client = render.client.internal
    everything = fits(list_tasks.sync(client=client, limit=100))
    names = {item.task.name for item in everything}
    assert {"square", "greet", "configured", "flaky_once"} <= names
    assert {item.task.workflow_version_id for item in everything} == {two_versions[0]}
    [square] = fits(list_tasks.sync(client=client, task_slug=["demo/square"]))
    assert square.task.name == "square"
    assert [i.task.name for i in fits(list_tasks.sync(client=client, task_slug=["greet"]))] == [
        "greet"
    ]
    old = fits(list_tasks.sync(client=client, workflow_version_id=[two_versions[1]], limit=100))
    assert {i.task.workflow_version_id for i in old} == {two_versions[1]} and len(old) == len(
        everything
    )
    workflow_id = square.task.workflow_id
    assert len(fits(list_tasks.sync(client=client, workflow_id=[workflow_id], limit=100))) == len(
        everything
    )
    assert list_tasks.sync(client=client, workflow_id=["wf-x"]) == []
    assert len(fits(list_tasks.sync(client=client, owner_id=["tea-x"], limit=100))) == len(
        everything
    )
    first = fits(list_tasks.sync(client=client, limit=2))
    rest = fits(list_tasks.sync(client=client, limit=100, cursor=first[-1].cursor))
    assert [i.task.id for i in first + rest] == [i.task.id for i in everything]

    by_id = fits(get_task.sync(client=client, task_id=square.task.id))
    assert isinstance(by_id, Task) and by_id.id == square.task.id
    missing = get_task.sync(client=client, task_id="tsk-unknown")
    assert isinstance(missing, Error) and "not found" in str(missing.message)


def test_workflows_and_versions(render: Render, two_versions: list[str]) -> None:
    client = render.client.internal
    [listed] = fits(list_workflows.sync(client=client))
    workflow = listed.workflow
    assert (workflow.name, workflow.slug, workflow.auto_deploy_trigger.value) == (
        "demo",
        "demo",
        "off",
    )
    for filters in ({"name": ["demo"]}, {"workflow_id": [workflow.id]}, {"owner_id": ["tea-x"]}):
        assert [i.workflow.id for i in fits(list_workflows.sync(client=client, **filters))] == [
            workflow.id
        ]
    assert list_workflows.sync(client=client, name=["other"]) == []
    assert list_workflows.sync(client=client, workflow_id=["wf-x"]) == []
    fetched = fits(get_workflow.sync(client=client, workflow_id=workflow.id))
    assert isinstance(fetched, Workflow) and fetched.id == workflow.id

    versions = fits(list_workflow_versions.sync(client=client, workflow_id=[workflow.id]))
    assert [i.workflow_version.id for i in versions] == two_versions
    [newest] = fits(list_workflow_versions.sync(client=client, workflow_id=[workflow.id], limit=1))
    assert newest.workflow_version.id == two_versions[0]
    older = fits(list_workflow_versions.sync(client=client, limit=1, cursor=newest.cursor))
    assert [i.workflow_version.id for i in older] == [two_versions[1]]
    chosen = list_workflow_versions.sync(client=client, workflow_version_id=[two_versions[1]])
    assert [i.workflow_version.id for i in fits(chosen)] == [two_versions[1]]
    one = fits(get_workflow_version.sync(client=client, workflow_version_id=two_versions[1]))
    assert isinstance(one, WorkflowVersion) and one.status.value == "ready"
    missing = get_workflow_version.sync(client=client, workflow_version_id="wfv-unknown")
    assert (
        isinstance(missing, Error) and missing.message == "workflow version wfv-unknown not found"
    )
    limited = httpx.get(f"{render.client.base_url}/v1/workflows/demo/versions?limit=1").json()
    assert [item["workflowVersion"]["id"] for item in limited] == [two_versions[0]]


@pytest.mark.anyio
async def test_the_async_client(local_dev: str, two_versions: list[str]) -> None:
    render = RenderAsync()
    client = render.client.internal
    details = fits(await render.workflows.run_task("demo/add_squares", [1, 2]))
    assert details.results == [5]
    started = await render.workflows.start_task("demo/square", {"a": 9})
    assert fits(started.task_run).id == started.id
    finished = fits(await started)
    assert finished.results == [81]
    assert fits(await render.workflows.get_task_run(started.id)).id == started.id
    listed = fits(await render.workflows.list_task_runs(ListTaskRunsParams(limit=5)))
    assert started.id in [item.task_run.id for item in listed]
    with pytest.raises(TaskRunError, match="bang"):
        await render.workflows.run_task("demo/parent_of_failure", ["bang"])
    slow = await render.workflows.start_task("demo/slow", [30])
    await render.workflows.cancel_task_run(slow.id)
    events = [fits(e) async for e in render.workflows.task_run_events([slow.id, started.id])]
    assert {e.status.value for e in events} == {"canceled", "succeeded"}

    tasks = fits(await list_tasks.asyncio(client=client, task_slug=["demo/square"]))
    assert [i.task.name for i in tasks] == ["square"]
    assert fits(await get_task.asyncio(client=client, task_id=tasks[0].task.id)).name == "square"
    runs = fits(await list_task_runs.asyncio(client=client, root_task_run_id=[started.id]))
    assert [i.task_run.id for i in runs] == [started.id]
    [workflow] = fits(await list_workflows.asyncio(client=client, name=["demo"]))
    assert fits(await get_workflow.asyncio(client=client, workflow_id=workflow.workflow.id))
    versions = await list_workflow_versions.asyncio(client=client, limit=1)
    assert [v.workflow_version.id for v in fits(versions)] == [two_versions[0]]
    version = await get_workflow_version.asyncio(client=client, workflow_version_id=two_versions[0])
    assert fits(version).id == two_versions[0]
    await client.get_async_httpx_client().aclose()


def test_the_0_8_client(local_dev: str) -> None:
    from render_sdk.client.errors import TaskRunError as TaskRunError08
    from render_sdk.client.types import ListTaskRunsParams as ListParams08
    from render_sdk.render import Render as Render08

    render = Render08()
    try:
        details = fits(render.workflows.run_task("demo/add_squares", [2, 3]))
        assert details.results == [13]
        started = fits(render.workflows.start_task("demo/slow", [30]))
        assert fits(render.workflows.get_task_run(started.id)).id == started.id
        listed = fits(render.workflows.list_task_runs(ListParams08(limit=3)))
        assert started.id in [item.task_run.id for item in listed]
        render.workflows.cancel_task_run(started.id)
        [event] = [fits(e) for e in render.workflows.task_run_events([started.id])]
        assert event.status.value == "canceled"
        with pytest.raises(TaskRunError08, match="oops"):
            render.workflows.run_task("demo/parent_of_failure", ["oops"])
    finally:
        render.client.internal.get_httpx_client().close()
