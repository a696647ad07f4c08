"""The HTTP layer against an in-memory engine: status codes, validation, auth, errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from render.public_api.models.task_run import TaskRun as RenderTaskRun

from core.domain import RunFilter, RunStatus
from tests.unit.app.app_fakes import WS, FakeRuntime, fake_app, make_run


@pytest.fixture
def runtime() -> FakeRuntime:
    fake = FakeRuntime()
    fake.service.runs["trn-1"] = make_run()
    return fake


pytestmark = pytest.mark.anyio


def http_client(runtime: FakeRuntime, anonymous: str | None = WS) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=fake_app(runtime, anonymous), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8120")


@pytest.fixture
async def client(runtime: FakeRuntime) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(runtime) as test_client:
        yield test_client


async def test_create_run(client: httpx.AsyncClient, runtime: FakeRuntime) -> None:
    response = await client.post(
        "/v1/task-runs", json={"task": "hello/square", "input": [3], "idempotencyKey": "k1"}
    )
    assert response.status_code == 202
    assert RenderTaskRun.from_dict(response.json()).status.value == "pending"
    assert runtime.service.calls[-1] == ("create", (WS, "hello/square", [3], "k1"))


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1]", "JSON object"),
        (b'{"input": []}', "'task'"),
        (b'{"task": "hello/square", "input": 7}', "'input'"),
        (b'{"task": "hello/square", "input": "x"}', "'input'"),
        (b'{"task": "hello/square", "input": [], "idempotencyKey": 5}', "idempotencyKey"),
    ],
)
async def test_create_run_rejects_bad_bodies(
    client: httpx.AsyncClient, body: bytes, fragment: str
) -> None:
    response = await client.post(
        "/v1/task-runs", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert fragment in response.json()["message"]


async def test_create_run_missing_input_is_empty_array(
    client: httpx.AsyncClient, runtime: FakeRuntime
) -> None:
    assert (await client.post("/v1/task-runs", json={"task": "hello/square"})).status_code == 202
    assert runtime.service.calls[-1][1][2] == []


async def test_too_large_bodies(client: httpx.AsyncClient, runtime: FakeRuntime) -> None:
    runtime.settings.limits.max_input_bytes = 10
    big = json.dumps({"task": "hello/square", "input": ["x" * 100_000]}).encode()
    json_type = {"content-type": "application/json"}
    response = await client.post("/v1/task-runs", content=big, headers=json_type)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
        yield b'{"task": "hello/square", "input": ["'
        for _ in range(20):
            yield b"x" * 10_000
        yield b'"]}'

    streamed = await client.post("/v1/task-runs", content=chunks(), headers=json_type)
    assert streamed.status_code == 413


async def test_service_errors_map_to_status(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/task-runs", json={"task": "hello/missing", "input": []})
    assert response.status_code == 404
    assert response.json() == {"message": "task hello/missing not found", "code": "not_found"}
    assert (await client.get("/v1/task-runs/trn-nope")).status_code == 404


async def test_get_run_and_wait(client: httpx.AsyncClient, runtime: FakeRuntime) -> None:
    body = (await client.get("/v1/task-runs/trn-1")).json()
    assert body["results"] == [49]
    assert (await client.get("/v1/task-runs/trn-1?wait=2.5")).status_code == 200
    assert ("wait", 2.5) in runtime.service.calls
    for bad in ("-1", "61", "abc", "nan"):
        response = await client.get(f"/v1/task-runs/trn-1?wait={bad}")
        assert response.status_code == 400, bad
        assert "wait" in response.json()["message"]


async def test_list_runs_filters(client: httpx.AsyncClient, runtime: FakeRuntime) -> None:
    response = await client.get(
        "/v1/task-runs?status=running,pending&status=completed&taskSlug=hello/square"
        "&rootsOnly=true&limit=5&cursor=trn-9&ownerId=whatever"
    )
    assert response.status_code == 200
    assert [item["cursor"] for item in response.json()] == ["trn-1"]
    run_filter, cursor, limit = runtime.service.calls[-1][1]
    assert run_filter == RunFilter(
        status=(RunStatus.RUNNING, RunStatus.PENDING, RunStatus.SUCCEEDED),
        task_slugs=("hello/square",),
        roots_only=True,
    )
    assert (cursor, limit) == ("trn-9", 5)


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "limit=x", "status=weird", "rootsOnly=maybe"],
)
async def test_list_runs_rejects_bad_query(client: httpx.AsyncClient, query: str) -> None:
    assert (await client.get(f"/v1/task-runs?{query}")).status_code == 400


async def test_cancel(client: httpx.AsyncClient, runtime: FakeRuntime) -> None:
    response = await client.delete("/v1/task-runs/trn-1")
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.delete("/v1/task-runs/trn-nope")).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/task-runs/trn-1", {"GET", "HEAD", "DELETE"}),
        ("DELETE", "/v1/task-runs", {"GET", "HEAD", "POST"}),
        ("PUT", "/v1/workflows", {"GET", "HEAD", "POST"}),
        ("POST", "/v1/workflows/wf-1", {"GET", "HEAD", "PATCH", "DELETE"}),
        ("PUT", "/sign-in", {"GET", "HEAD", "POST"}),
    ],
)
async def test_405_allows_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == allowed


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/nothing")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    response = await client.put("/v1/task-runs/trn-1")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_unexpected_error_is_500_without_traceback(
    client: httpx.AsyncClient, runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(workspace_id: str) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(runtime.service, "usage", broken)
    response = await client.get("/v1/usage")
    assert response.status_code == 500
    assert response.json() == {"message": "internal server error", "code": "internal"}
    assert "secret" not in response.text


async def test_auth(runtime: FakeRuntime) -> None:
    async with http_client(runtime, anonymous=None) as strict:
        assert (await strict.get("/v1/task-runs")).status_code == 401
        assert (
            await strict.get("/v1/task-runs", headers={"Authorization": "Basic x"})
        ).status_code == 401
        ok = await strict.get("/v1/task-runs", headers={"Authorization": "Bearer cvy_good"})
        assert ok.status_code == 200
        assert runtime.service.calls[-1][0] == "list"
        assert (await strict.get("/healthz")).json() == {"status": "ok"}
    async with http_client(runtime, anonymous=WS) as dev:
        assert (await dev.get("/v1/task-runs")).status_code == 200
        assert (
            await dev.get("/v1/task-runs", headers={"Authorization": "Bearer "})
        ).status_code == 200
        wrong = await dev.get("/v1/task-runs", headers={"Authorization": "Bearer cvy_bad"})
        assert wrong.status_code == 401
        assert wrong.json()["code"] == "unauthorized"


async def test_sse_sends_each_run_then_closes(
    client: httpx.AsyncClient, runtime: FakeRuntime
) -> None:
    runtime.service.runs["trn-2"] = make_run("trn-2", status=RunStatus.FAILED, error="boom")
    response = await client.get("/v1/task-runs/events?taskRunIds=trn-1,trn-2")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [block for block in response.text.split("\n\n") if block]
    assert [e.splitlines()[0] for e in events] == ["event: task.completed"] * 2
    assert json.loads(events[1].splitlines()[1].removeprefix("data: "))["error"] == "boom"


async def test_sse_errors(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/task-runs/events")).status_code == 400
    assert (await client.get("/v1/task-runs/events?taskRunIds=trn-nope")).status_code == 404


async def test_sse_pings_while_waiting() -> None:
    from app.api.events import event_stream

    end = asyncio.Event()
    fake = FakeRuntime()
    fake.service.runs["trn-1"] = make_run(status=RunStatus.RUNNING)
    fake.service.end_event = end
    stream = event_stream(fake.service.watch_runs(WS, ["trn-1"]), ["trn-1"], 0.01)
    assert await anext(stream) == ": ping\n\n"
    end.set()
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].startswith("event: task.completed\ndata: {")


async def test_logs(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/logs?taskRun=trn-1")
    assert response.status_code == 200
    assert response.text == "hello\nworld\n"
    assert response.headers["content-type"].startswith("text/plain")
    assert (await client.get("/v1/logs?taskRun=trn-1&follow=true")).text == "hello\nworld\n"
    assert (await client.get("/v1/logs")).status_code == 400
    assert (await client.get("/v1/logs?taskRun=trn-1&attempt=-1")).status_code == 400
    assert (await client.get("/v1/logs?taskRun=trn-nope")).status_code == 404


async def test_tasks_workflows_usage(client: httpx.AsyncClient) -> None:
    tasks = (await client.get("/v1/tasks")).json()
    assert [t["task"]["slug"] for t in tasks] == ["hello/square", "hello/add"]
    assert (await client.get("/v1/tasks/hello/square")).json()["name"] == "square"
    assert (await client.get("/v1/tasks/hello/nope")).status_code == 404
    assert (await client.get("/v1/workflows")).json()[0]["workflow"]["slug"] == "hello"
    versions = (await client.get("/v1/workflowversions?workflowID=wf-1")).json()
    assert versions[0]["workflowVersion"]["status"] == "ready"
    assert (await client.get("/v1/usage")).json() == {"computeSeconds": 1.5}


async def test_openapi_lists_every_operation(client: httpx.AsyncClient) -> None:
    from starlette.routing import Route

    from app.server import api_routes

    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    documented = {
        (
            method.upper(),
            p.replace("{taskRunId}", "{run_id}")
            .replace("{taskRef}", "{task_ref:path}")
            .replace("{workflowVersionId}", "{version_id}"),
        )
        for p, item in document["paths"].items()
        for method in item
    }
    # /internal/ routes serve the instance relay (attempt tokens), not API clients
    served = {
        (method, route.path)
        for route in api_routes()
        if isinstance(route, Route) and not route.path.startswith("/internal/")
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert served == documented
    schemas = document["components"]["schemas"]
    assert {"TaskRun", "TaskRunDetails", "Task", "Error"} <= set(schemas)
    refs = {ref for ref in json.dumps(document).split('"') if ref.startswith("#/components/")}
    assert {ref.rsplit("/", 1)[1] for ref in refs} <= set(schemas)


async def test_the_dev_document_makes_the_key_optional(runtime: FakeRuntime) -> None:
    async with http_client(runtime) as dev, http_client(runtime, anonymous=None) as production:
        dev_doc = (await dev.get("/openapi.json")).json()
        production_doc = (await production.get("/openapi.json")).json()
    assert production_doc["security"] == [{"apiKey": []}]
    assert {} in dev_doc["security"] and "conveyor dev" in dev_doc["info"]["description"]
    for document in (dev_doc, production_doc):
        assert document["paths"]["/healthz"]["get"]["security"] == []
        assert "post" in document["paths"]["/v1/workflows"]
