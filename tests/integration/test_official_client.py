"""Render's official client (`render` 1.x) drives `conveyor dev` as if it were Render."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from render import Render
from render.client.errors import ClientError, TaskRunError
from render.client.types import ListTaskRunsParams

from tests.integration.dev_server import DevServer, dev_server
from tests.integration.engine_fixtures import copy_workflow

RENDER1 = "python -m render.workflows.cli main:app"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    root = tmp_path_factory.mktemp("official-client")
    workflow = copy_workflow("render1", root)
    with dev_server(workflow, root / "data", start_command=RENDER1, name="demo") as running:
        yield running


@pytest.fixture
def render(server: DevServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Render]:
    monkeypatch.setenv("RENDER_USE_LOCAL_DEV", "true")
    monkeypatch.setenv("RENDER_LOCAL_DEV_URL", server.url)
    client = Render()
    yield client
    # the official sync client never closes its connection pool itself
    client.client.internal.get_httpx_client().close()


def test_run_task_waits_for_the_result(render: Render) -> None:
    details = render.workflows.run_task("demo/add_squares", [3, 4])
    assert details.status.value == "succeeded"
    assert details.results == [25]
    assert details.parent_task_run_id == ""
    assert details.root_task_run_id == details.id


def test_run_task_with_keywords(render: Render) -> None:
    details = render.workflows.run_task("demo/greet", {"name": "Grace"})
    assert details.results == ["Hello, Grace!"]


def test_run_task_raises_on_failure(render: Render) -> None:
    with pytest.raises(TaskRunError, match="kaboom"):
        render.workflows.run_task("demo/parent_of_failure", ["kaboom"])


def test_start_get_list_and_cancel(render: Render) -> None:
    started = render.workflows.start_task("demo/slow", [30])
    assert started.status.value in ("pending", "running")
    fetched = render.workflows.get_task_run(started.id)
    assert fetched.id == started.id
    assert fetched.input_ == [30]
    listed = render.workflows.list_task_runs(ListTaskRunsParams(limit=50))
    assert started.id in [item.task_run.id for item in listed]
    render.workflows.cancel_task_run(started.id)
    assert render.workflows.get_task_run(started.id).status.value == "canceled"


def test_idempotent_start_returns_the_first_run(render: Render) -> None:
    first = render.workflows.start_task("demo/square", [9], idempotency_key="same-key")
    second = render.workflows.start_task("demo/square", [9], idempotency_key="same-key")
    assert first.id == second.id


def test_unknown_task_is_a_client_error(render: Render) -> None:
    with pytest.raises(ClientError):
        render.workflows.start_task("demo/no_such_task", [1])


def test_localhost_as_in_render_default_url(
    server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Render's default local URL says `localhost`; the dev server's Host check accepts it."""
    monkeypatch.setenv("RENDER_USE_LOCAL_DEV", "true")
    monkeypatch.setenv("RENDER_LOCAL_DEV_URL", server.url.replace("127.0.0.1", "localhost"))
    client = Render()
    try:
        assert client.workflows.run_task("demo/square", [5]).results == [25]
    finally:
        client.client.internal.get_httpx_client().close()
