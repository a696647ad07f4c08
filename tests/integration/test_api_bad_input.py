"""Bad requests get a clear 4xx JSON answer and change nothing already stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.api_fixtures import ApiServer, serve_api


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with serve_api(tmp_path_factory.mktemp("bad-input")) as state:
        yield state


@pytest.fixture
def http(server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=70) as client:
        yield client


def _all_runs(http: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = http.get("/v1/task-runs", params={"limit": 100}).json()
    return [http.get(f"/v1/task-runs/{item['taskRun']['id']}").json() for item in items]


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"message", "code"}
    assert body["message"]
    return str(body["message"])


def test_rejections_are_clear_and_store_nothing(http: httpx.Client) -> None:
    done = http.post("/v1/task-runs", json={"task": "api/square", "input": [6]}).json()
    finished = http.get(f"/v1/task-runs/{done['id']}", params={"wait": 30}).json()
    assert finished["results"] == [36]
    before = _all_runs(http)

    json_headers = {"content-type": "application/json"}
    malformed = http.post("/v1/task-runs", content=b'{"task": "api/square", ', headers=json_headers)
    assert "JSON" in _error(malformed, 400)
    not_object = http.post("/v1/task-runs", json=["api/square", 1])
    _error(not_object, 400)
    unknown = http.post("/v1/task-runs", json={"task": "api/no_such_task", "input": []})
    assert "no_such_task" in _error(unknown, 404)
    misspelt = http.post("/v1/task-runs", json={"task": "api/sqare", "input": [1]})
    assert _error(misspelt, 404) == "task 'api/sqare' not found (did you mean api/square?)"
    wrong_type = http.post("/v1/task-runs", json={"task": "api/square", "input": ["three"]})
    assert _error(wrong_type, 400) == (
        "task 'api/square' cannot take this input: a: expected int, got 'three'"
    )
    wrong_keyword = http.post("/v1/task-runs", json={"task": "api/square", "input": {"b": 1}})
    assert "unexpected input 'b' (inputs: 'a')" in _error(wrong_keyword, 400)
    too_many = http.post("/v1/task-runs", json={"task": "api/square", "input": [1, 2]})
    assert _error(too_many, 400).endswith("takes 1 input, got 2")
    scalar = http.post("/v1/task-runs", json={"task": "api/square", "input": "7"})
    assert "array" in _error(scalar, 400)
    huge = json.dumps({"task": "api/square", "input": ["x" * (5 * 1024 * 1024)]})
    too_large = http.post("/v1/task-runs", content=huge.encode(), headers=json_headers)
    _error(too_large, 413)
    bad_wait = http.get(f"/v1/task-runs/{done['id']}", params={"wait": "soon"})
    _error(bad_wait, 400)
    unknown_route = http.get("/v1/nothing-here")
    _error(unknown_route, 404)

    assert _all_runs(http) == before
