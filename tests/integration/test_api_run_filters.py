"""`GET /v1/task-runs?status=`: on a server of its own holding runs of four statuses, each filter
answers exactly the runs of its statuses (an ignored filter, or an empty answer, fails)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.api_fixtures import serve_api


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with (
        serve_api(tmp_path_factory.mktemp("filters")) as server,
        httpx.Client(base_url=server.url, timeout=70) as client,
    ):
        yield client


def start(http: httpx.Client, task: str, run_input: object) -> str:
    response = http.post("/v1/task-runs", json={"task": task, "input": run_input})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["id"]
    return run_id


def wait_for(http: httpx.Client, run_id: str, status: str) -> None:
    body = http.get(f"/v1/task-runs/{run_id}", params={"wait": 60}).json()
    assert body["status"] == status, body


def listed(http: httpx.Client, **params: str) -> set[str]:
    response = http.get("/v1/task-runs", params={"limit": "100", **params})
    assert response.status_code == 200, response.text
    return {item["taskRun"]["id"] for item in response.json()}


@pytest.fixture(scope="module")
def runs(http: httpx.Client) -> dict[str, str]:
    """One run of each status, by status; nothing else on the server."""
    assert listed(http) == set()
    succeeded = start(http, "api/square", [3])
    failed = start(http, "api/fails", ["boom"])
    canceled = start(http, "api/slow", [60])
    wait_for(http, succeeded, "succeeded")
    wait_for(http, failed, "failed")
    assert http.delete(f"/v1/task-runs/{canceled}").status_code == 204
    wait_for(http, canceled, "canceled")
    running = start(http, "api/slow", [60])
    for _ in range(600):
        if http.get(f"/v1/task-runs/{running}").json()["status"] == "running":
            break
        http.get(f"/v1/task-runs/{running}", params={"wait": 0.1})
    else:
        pytest.fail("the slow run never started")
    by_status = {
        "succeeded": succeeded,
        "failed": failed,
        "canceled": canceled,
        "running": running,
    }
    assert listed(http) == set(by_status.values())
    return by_status


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("succeeded", {"succeeded"}),
        ("failed", {"failed"}),
        ("canceled", {"canceled"}),
        ("running", {"running"}),
        ("pending", set()),
        ("succeeded,failed", {"succeeded", "failed"}),
        ("failed,canceled,running", {"failed", "canceled", "running"}),
        (
            "succeeded,failed,canceled,running,pending",
            {"succeeded", "failed", "canceled", "running"},
        ),
    ],
)
def test_status_filter_answers_exactly_those_runs(
    http: httpx.Client, runs: dict[str, str], status: str, expected: set[str]
) -> None:
    assert listed(http, status=status) == {runs[s] for s in expected}


def test_an_unknown_status_is_a_clear_error(http: httpx.Client, runs: dict[str, str]) -> None:
    response = http.get("/v1/task-runs", params={"status": "done"})
    assert response.status_code == 400
    assert "done" in response.json()["message"]


def test_no_filter_lists_every_run(http: httpx.Client, runs: dict[str, str]) -> None:
    assert listed(http) == set(runs.values())
