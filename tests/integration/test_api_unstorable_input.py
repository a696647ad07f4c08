"""Input that cannot be stored and read back as sent is refused; every stored run stays readable.

On SQLite and PostgreSQL: lone surrogates, deep nesting, NUL and over-long fields are 400s
that store nothing, and a run whose task itself returned or raised a lone surrogate answers
every read (API, events, dashboard, downloads).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.api_fixtures import ApiServer, serve_api
from tests.integration.databases import BACKENDS, fresh_database

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    root = tmp_path_factory.mktemp(f"unstorable-{request.param}")
    with (
        fresh_database(request.param, root) as url,
        serve_api(root, database_url=url) as state,
    ):
        yield state


@pytest.fixture
def http(server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=70) as client:
        yield client


def post_raw(http: httpx.Client, path: str, body: str) -> httpx.Response:
    """`body` as written: json.dumps would refuse nothing, but the tests need exact escapes."""
    return http.post(path, content=body.encode(), headers=JSON)


def refused(response: httpx.Response, *fragments: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    for fragment in fragments:
        assert fragment in response.json()["message"]


def run_ids(http: httpx.Client) -> list[str]:
    items = http.get("/v1/task-runs", params={"limit": 100}).json()
    return [item["taskRun"]["id"] for item in items]


def nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


def object_nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def test_lone_surrogates_are_refused_everywhere(http: httpx.Client) -> None:
    before = run_ids(http)
    refused(post_raw(http, "/v1/task-runs", '{"task": "\\ud800"}'), "surrogate", "'task'")
    for body in [
        '{"task": "api/square", "input": ["\\udc00"]}',
        '{"task": "api/square", "input": {"a\\ud800": 1}}',
        '{"task": "api/square", "input": [{"deep": ["x\\udbff"]}]}',
        '{"task": "api/square", "input": [3], "idempotencyKey": "k\\ud800"}',
    ]:
        refused(post_raw(http, "/v1/task-runs", body), "surrogate")
    # the same bytes encoded as UTF-8 would be (CESU) are not UTF-8 at all
    cesu = b'{"task": "api/square", "input": ["\xed\xa0\x80"]}'
    refused(http.post("/v1/task-runs", content=cesu, headers=JSON), "UTF-8")
    # a valid pair is one character and is kept
    pair = post_raw(http, "/v1/task-runs", '{"task": "api/keep", "input": ["\\ud83d\\ude00"]}')
    assert pair.status_code == 202
    assert http.get(f"/v1/task-runs/{pair.json()['id']}").json()["input"] == ["😀"]
    assert set(run_ids(http)) - set(before) == {pair.json()["id"]}


@pytest.mark.parametrize("depth", [5_000, 200_000])
def test_deep_nesting_is_refused_before_parsing(http: httpx.Client, depth: int) -> None:
    before = run_ids(http)
    arrays = f'{{"task": "api/square", "input": [{nested(depth)}]}}'
    refused(post_raw(http, "/v1/task-runs", arrays), "512")
    objects = f'{{"task": "api/square", "input": {object_nested(depth)}}}'
    refused(post_raw(http, "/v1/task-runs", objects), "512")
    # (workflow bodies stop at 256 KiB: 200,000 levels are a 413 before anything else)
    envs = object_nested(min(depth, 20_000))
    workflow = f'{{"name": "deep", "repo": "file:///a/b", "envVars": {envs}}}'
    refused(post_raw(http, "/v1/workflows", workflow), "512")
    assert run_ids(http) == before


def test_nesting_at_the_limit_is_stored_and_read_back(http: httpx.Client) -> None:
    # the body is one object, so its `input` may nest 511 levels
    deepest = json.loads(nested(511))
    started = http.post("/v1/task-runs", json={"task": "api/keep", "input": deepest})
    assert started.status_code == 202, started.text
    run = http.get(f"/v1/task-runs/{started.json()['id']}", params={"wait": 30}).json()
    assert run["input"] == deepest
    assert run["status"] == "succeeded", run["error"]
    refused(post_raw(http, "/v1/task-runs", f'{{"task": "api/square", "input": {nested(512)}}}'))


def test_nul_and_oversized_text_is_refused(http: httpx.Client) -> None:
    before = run_ids(http)
    bodies: list[tuple[dict[str, Any], str]] = [
        ({"task": "api/square\u0000", "input": [1]}, "NUL"),
        ({"task": "api/square", "input": [1], "idempotencyKey": "a\u0000b"}, "NUL"),
        ({"task": "api/square", "input": [1], "idempotencyKey": "k" * 201}, "200"),
        ({"task": "x" * 401, "input": [1]}, "400"),
    ]
    for body, fragment in bodies:
        refused(http.post("/v1/task-runs", json=body), fragment)
    workflows: list[tuple[dict[str, Any], str]] = [
        ({"name": "a\u0000", "repo": "file:///a/b"}, "NUL"),
        ({"name": "n" * 201, "repo": "file:///a/b"}, "200"),
        ({"name": "ok", "repo": "file:///a/b", "branch": "b" * 256}, "255"),
        ({"name": "ok", "repo": "file:///a/b", "envVars": {"A": "x\u0000"}}, "NUL"),
        ({"name": "ok", "repo": "file:///a/b", "envVars": {"A\n": "x"}}, "not a variable name"),
        ({"slug": "ok\n", "repo": "file:///a/b"}, "slug"),
    ]
    for body, fragment in workflows:
        refused(http.post("/v1/workflows", json=body), fragment)
    for path in ["/v1/task-runs/trn-%00", "/v1/task-runs?taskSlug=a%00", "/v1/tasks/api%2Fsq%00"]:
        refused(http.get(path), "NUL")
    assert run_ids(http) == before
    assert [w["workflow"]["slug"] for w in http.get("/v1/workflows").json()] == ["api"]


def every_read(http: httpx.Client, run_id: str) -> dict[str, Any]:
    run = http.get(f"/v1/task-runs/{run_id}", params={"wait": 30})
    assert run.status_code == 200, run.text
    listed = http.get("/v1/task-runs", params={"limit": 100})
    assert listed.status_code == 200
    events = http.get("/v1/task-runs/events", params={"taskRunIds": run_id})
    assert events.status_code == 200 and "task.completed" in events.text
    assert http.get("/v1/logs", params={"taskRun": run_id}).status_code == 200
    for page in [f"/runs/{run_id}", f"/runs/{run_id}/input.json", f"/runs/{run_id}/output.json"]:
        assert http.get(page).status_code == 200, page
    assert http.get("/runs").status_code == 200
    details: dict[str, Any] = run.json()
    return details


def test_a_run_whose_output_holds_a_lone_surrogate_stays_readable(http: httpx.Client) -> None:
    """A task may return text no input could carry; it is read back as its escape."""
    started = http.post("/v1/task-runs", json={"task": "api/lone_surrogate", "input": []})
    run = every_read(http, started.json()["id"])
    assert run["status"] == "succeeded"
    assert run["results"] == ["\ud800"]  # httpx's JSON decoder reads the escape back as sent


def test_a_run_whose_error_holds_a_lone_surrogate_ends(http: httpx.Client) -> None:
    failing = {"task": "api/fails_with_lone_surrogate", "input": []}
    run_id = http.post("/v1/task-runs", json=failing).json()["id"]
    assert http.get(f"/v1/task-runs/{run_id}", params={"wait": 5}).json()["status"] == "failed"
    assert "bad" in every_read(http, run_id)["error"]
