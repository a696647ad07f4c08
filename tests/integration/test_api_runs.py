"""REST v1 over a real engine: runs end to end, read by raw HTTP and by Render's own client."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from render import Render
from render.public_api.models.task_run_details import TaskRunDetails as RenderDetails
from render.public_api.models.task_run_with_cursor import TaskRunWithCursor
from render.public_api.models.task_with_cursor import TaskWithCursor

from tests.integration.api_fixtures import WS, ApiServer, serve_api


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with serve_api(tmp_path_factory.mktemp("api"), ping=0.2) as state:
        yield state


@pytest.fixture
def http(server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=70) as client:
        yield client


def start(http: httpx.Client, task: str, run_input: Any) -> str:
    response = http.post("/v1/task-runs", json={"task": task, "input": run_input})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["id"]
    return run_id


def finish(http: httpx.Client, run_id: str) -> dict[str, Any]:
    body: dict[str, Any] = http.get(f"/v1/task-runs/{run_id}", params={"wait": 60}).json()
    assert body["status"] in ("succeeded", "failed", "canceled"), body
    RenderDetails.from_dict(body)
    return body


def test_run_succeeds(http: httpx.Client) -> None:
    run = finish(http, start(http, "api/square", [7]))
    assert run["status"] == "succeeded"
    assert run["results"] == [49]
    assert run["input"] == [7]
    assert run["parentTaskRunId"] == ""
    assert run["attempts"][0]["outcome"] == "ok"
    assert run["completedAt"].endswith("Z")


def test_keyword_input_and_failure(http: httpx.Client) -> None:
    run = finish(http, start(http, "api/fails", {"message": "boom"}))
    assert run["status"] == "failed"
    assert "boom" in run["error"]
    assert run["results"] == []


def test_children_and_list_filters(http: httpx.Client) -> None:
    root_id = start(http, "api/square_plus_one", [3])
    assert finish(http, root_id)["results"] == [10]
    items = http.get("/v1/task-runs", params={"rootTaskRunId": root_id}).json()
    runs = [TaskRunWithCursor.from_dict(item).task_run for item in items]
    assert {r.id for r in runs} >= {root_id}
    child = next(r for r in runs if r.id != root_id)
    assert child.parent_task_run_id == root_id
    assert child.root_task_run_id == root_id
    roots = http.get("/v1/task-runs", params={"rootsOnly": "true", "limit": 100}).json()
    assert child.id not in {item["taskRun"]["id"] for item in roots}
    done = http.get("/v1/task-runs", params={"status": "succeeded,failed"}).json()
    assert {item["taskRun"]["status"] for item in done} <= {"succeeded", "failed"}


def test_nan_result(http: httpx.Client) -> None:
    run_id = start(http, "api/not_a_number", [])
    text = http.get(f"/v1/task-runs/{run_id}", params={"wait": 60}).text
    assert "NaN" in text
    assert math.isnan(json.loads(text)["results"][0])


def test_cancel(http: httpx.Client) -> None:
    run_id = start(http, "api/slow", [30])
    assert http.delete(f"/v1/task-runs/{run_id}").status_code == 204
    assert finish(http, run_id)["status"] == "canceled"
    assert http.delete(f"/v1/task-runs/{run_id}").status_code == 204


def test_events_stream(http: httpx.Client) -> None:
    done = start(http, "api/square", [2])
    finish(http, done)
    later = start(http, "api/slow", [0.5])
    events: list[dict[str, Any]] = []
    pings = 0
    with http.stream("GET", "/v1/task-runs/events", params={"taskRunIds": f"{done},{later}"}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
            pings += line == ": ping"
    assert [e["id"] for e in events] == [done, later]
    assert events[1]["results"] == ["done"]
    assert pings >= 1
    assert http.get("/v1/task-runs/events", params={"taskRunIds": "trn-nope"}).status_code == 404


def test_logs(http: httpx.Client) -> None:
    run_id = start(http, "api/chatty", [3])
    finish(http, run_id)
    response = http.get("/v1/logs", params={"taskRun": run_id})
    assert response.status_code == 200
    assert "line 2" in response.text
    followed = http.get("/v1/logs", params={"taskRun": run_id, "attempt": 0, "follow": "true"})
    assert "line 0" in followed.text


def test_tasks_workflows(http: httpx.Client) -> None:
    items = http.get("/v1/tasks", params={"limit": 100}).json()
    names = {TaskWithCursor.from_dict(item).task.name for item in items}
    assert {"square", "fails", "square_plus_one"} <= names
    square = http.get("/v1/tasks/api/square").json()
    assert square["slug"] == "api/square"
    assert square["description"] == "The square of a."
    assert square["parameters"] == [
        {"name": "a", "hasDefault": False, "type": "int", "schema": {"type": "integer"}}
    ]
    workflows = http.get("/v1/workflows").json()
    assert [w["workflow"]["slug"] for w in workflows] == ["api"]
    versions = http.get("/v1/workflowversions").json()
    assert versions[0]["workflowVersion"]["status"] == "ready"
    assert http.get("/v1/usage").status_code == 200


def test_errors(http: httpx.Client) -> None:
    assert http.post("/v1/task-runs", json={"task": "api/nope", "input": []}).status_code == 404
    assert http.post("/v1/task-runs", json={"task": "api/square", "input": 3}).status_code == 400
    assert http.get("/v1/task-runs/trn-nope").status_code == 404
    assert http.get("/openapi.json").json()["openapi"] == "3.1.0"


def test_api_keys(server: ApiServer, http: httpx.Client) -> None:
    key = server.call(server.engine.keys.create(WS, "test"))
    good = http.get("/v1/task-runs", headers={"Authorization": f"Bearer {key.secret}"})
    assert good.status_code == 200
    bad = http.get("/v1/task-runs", headers={"Authorization": "Bearer cvy_wrong"})
    assert bad.status_code == 401


def close_render(render: Render) -> None:
    # Render's sync client never closes its pooled connections; do it so no socket leaks.
    render._client.internal.get_httpx_client().close()


def test_official_render_client(server: ApiServer) -> None:
    stranger = Render(token="not-a-key", base_url=server.url)
    # A wrong token is refused even where no token would be accepted.
    with pytest.raises(Exception, match="unknown, revoked or expired API key"):
        stranger.workflows.get_task_run("trn-x")
    close_render(stranger)
    key = server.call(server.engine.keys.create(WS, "render"))
    render = Render(token=key.secret, base_url=server.url)
    try:
        details = render.workflows.run_task("api/square", [5])
        assert details.results == [25]
        started = render.workflows.start_task("api/square", {"a": 6})
        assert render.workflows.get_task_run(started.id).id == started.id
        assert any(item.task_run.id == started.id for item in render.workflows.list_task_runs())
    finally:
        close_render(render)
