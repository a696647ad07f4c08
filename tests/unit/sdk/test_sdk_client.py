"""`Client` and `AsyncClient` against documented REST shapes (docs/rest-api.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from conveyor import (
    APIError,
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    RunStatus,
    ServerUnreachable,
    TaskRun,
    TaskRunFailed,
    WaitTimeout,
)

TS = "2026-11-25T21:18:08.123456Z"
WHEN = datetime(2026, 11, 25, 21, 18, 8, 123456, tzinfo=UTC)

ATTEMPT = {
    "attempt": 0,
    "status": "failed",
    "taskRunId": "trn-1",
    "enqueuedAt": TS,
    "startedAt": TS,
    "completedAt": TS,
    "outcome": "error",
    "error": "ValueError: first",
    "stackTrace": "Traceback ...",
    "results": [],
}


def details(status: str = "succeeded", **extra: Any) -> dict[str, Any]:
    return {
        "id": "trn-1",
        "taskId": "tsk-1",
        "taskSlug": "hello/square",
        "workflowId": "wf-1",
        "workflowVersionId": "wfv-1",
        "status": status,
        "parentTaskRunId": "",
        "rootTaskRunId": "trn-1",
        "retries": 1,
        "createdAt": TS,
        "startedAt": TS,
        "completedAt": TS,
        "attempts": [ATTEMPT, {**ATTEMPT, "attempt": 1, "status": "succeeded", "outcome": "ok"}],
        "results": [49],
        "input": [7],
        "waiting": False,
        **extra,
    }


TASK = {
    "id": "tsk-1",
    "name": "square",
    "slug": "hello/square",
    "createdAt": TS,
    "workflowId": "wf-1",
    "workflowVersionId": "wfv-1",
    "options": {
        "retry": {"maxRetries": 3, "waitDurationMs": 1000, "factor": 2.0},
        "timeoutSeconds": 60,
        "plan": "pro",
        "schedule": "0 * * * *",
        "concurrency": 2,
    },
    "parameters": [
        {"name": "a", "type": "int", "hasDefault": False, "schema": {"type": "integer"}},
        {"name": "b", "hasDefault": True, "defaultValue": "2"},
    ],
    "description": "The square of a.",
}

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler, **kwargs: Any) -> tuple[Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return Client("http://conveyor.test", transport=httpx.MockTransport(record), **kwargs), seen


def test_start_sends_the_documented_body_and_parses_every_field() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/v1/task-runs")
        assert json.loads(request.content) == {
            "task": "hello/square",
            "input": {"a": 7},
            "idempotencyKey": "k1",
        }
        root = {**details("pending"), "parentTaskAttempt": 0, "parentTaskRunId": "trn-0"}
        return httpx.Response(202, json=root)

    client, seen = client_for(handler, api_key="secret")
    run = client.start("hello/square", {"a": 7}, idempotency_key="k1")
    assert seen[0].headers["authorization"] == "Bearer secret"
    assert run.id == "trn-1" and run.task_id == "tsk-1" and run.task_slug == "hello/square"
    assert (run.workflow_id, run.workflow_version_id) == ("wf-1", "wfv-1")
    assert run.status is RunStatus.PENDING and not run.is_terminal
    assert (run.parent_task_run_id, run.parent_task_attempt) == ("trn-0", 0)
    assert not run.is_root and run.root_task_run_id == "trn-1" and run.retries == 1
    assert run.created_at == run.started_at == run.completed_at == WHEN
    assert run.result is None  # not succeeded (yet)
    first, second = run.attempts
    assert (first.attempt, first.status, first.task_run_id) == (0, RunStatus.FAILED, "trn-1")
    assert first.enqueued_at == first.started_at == first.completed_at == WHEN
    assert (first.outcome, first.error, first.stack_trace) == (
        "error",
        "ValueError: first",
        "Traceback ...",
    )
    assert first.results == [] and second.outcome == "ok"
    assert run.input == [7] and run.waiting is False


def test_minimal_run_and_result_unwrapping() -> None:
    minimal = {"id": "trn-2", "status": "completed", "parentTaskRunId": ""}
    run = TaskRun.model_validate(minimal)
    assert run.status is RunStatus.SUCCEEDED and run.is_root and run.attempts == []
    assert run.result == []  # results default to [] and stay a list
    assert TaskRun.model_validate({**minimal, "results": [7]}).result == 7
    assert TaskRun.model_validate({**minimal, "results": [1, 2]}).result == [1, 2]
    failed = TaskRun.model_validate({**minimal, "status": "failed", "error": "E: x"})
    assert failed.result is None and failed.error == "E: x"
    with pytest.raises(Exception, match="frozen"):
        run.id = "other"


def test_wait_long_polls_until_terminal() -> None:
    answers = iter([details("running"), details("running"), details("succeeded")])

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/task-runs/trn-1"
        assert request.url.params["wait"] == "30"
        assert request.extensions["timeout"]["read"] == 60.0  # the hold plus the client timeout
        return httpx.Response(200, json=next(answers))

    client, seen = client_for(handler)
    run = client.wait("trn-1")
    assert run.result == 49 and len(seen) == 3


def test_wait_timeout() -> None:
    client, _ = client_for(lambda r: httpx.Response(200, json=details("running")))
    with pytest.raises(WaitTimeout, match="trn-1"):
        client.wait("trn-1", timeout=0)


def test_run_raises_on_failure_unless_asked_not_to() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        status = 202 if request.method == "POST" else 200
        return httpx.Response(status, json=details("failed", error="ValueError: no", results=[]))

    client, seen = client_for(handler)
    with pytest.raises(TaskRunFailed) as caught:
        client.run("hello/square", [1])
    assert (caught.value.run_id, caught.value.task) == ("trn-1", "hello/square")
    assert caught.value.error == "ValueError: no" and caught.value.status == "failed"
    assert json.loads(seen[0].content) == {"task": "hello/square", "input": [1]}
    assert client.run("hello/square", raise_on_failure=False).status is RunStatus.FAILED


def test_list_filters_and_paging() -> None:
    pages = {
        None: [{"taskRun": details("running"), "cursor": "c1"}] * 2,
        "c1": [{"taskRun": details("pending"), "cursor": "c2"}],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/task-runs"
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    client, seen = client_for(handler)
    page = client.list(
        status="running",
        task="hello/square",
        root_id="trn-0",
        parent_id="trn-9",
        roots_only=True,
        limit=2,
    )
    assert dict(seen[0].url.params) == {
        "limit": "2",
        "status": "running",
        "taskSlug": "hello/square",
        "rootTaskRunId": "trn-0",
        "parentTaskRunId": "trn-9",
        "rootsOnly": "true",
    }
    assert len(page.items) == 2 and page.next_cursor == "c1"
    assert [r.status for r in client.iter_runs(limit=2)] == ["running", "running", "pending"]


def test_cancel_tasks_and_logs() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            assert request.url.path == "/v1/task-runs/trn-1"
            return httpx.Response(204)
        if request.url.path == "/v1/tasks":
            return httpx.Response(200, json=[{"task": TASK, "cursor": "t1"}])
        assert request.url.path == "/v1/logs"
        assert dict(request.url.params) == {"taskRun": "trn-1", "attempt": "1"}
        return httpx.Response(200, text="hello\n", headers={"content-type": "text/plain"})

    client, _ = client_for(handler)
    client.cancel("trn-1")
    [task] = client.tasks()
    assert (task.id, task.name, task.slug, task.created_at) == (
        "tsk-1",
        "square",
        "hello/square",
        WHEN,
    )
    assert (task.workflow_id, task.workflow_version_id) == ("wf-1", "wfv-1")
    assert task.options.retry is not None
    assert (task.options.retry.max_retries, task.options.retry.wait_duration_ms) == (3, 1000)
    assert task.options.retry.factor == 2.0
    assert (task.options.timeout_seconds, task.options.plan) == (60, "pro")
    assert (task.options.schedule, task.options.concurrency) == ("0 * * * *", 2)
    a, b = task.parameters
    assert (a.name, a.type, a.has_default, a.default_value) == ("a", "int", False, None)
    assert (b.name, b.type, b.has_default, b.default_value) == ("b", None, True, "2")
    assert (a.json_schema, b.json_schema) == ({"type": "integer"}, None)
    assert task.description == "The square of a."
    assert client.logs("trn-1", attempt=1) == "hello\n"


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_request", InvalidRequestError),
        (401, "unauthorized", AuthenticationError),
        (404, "not_found", NotFoundError),
        (409, "conflict", ConflictError),
        (413, "payload_too_large", PayloadTooLargeError),
        (422, "invalid_input", InvalidRequestError),
        (500, "internal", APIError),
    ],
)
def test_error_answers(status: int, code: str, cls: type[APIError]) -> None:
    body = {"message": "it went wrong", "code": code}
    client, _ = client_for(lambda r: httpx.Response(status, json=body))
    with pytest.raises(cls) as caught:
        client.get("trn-1")
    assert type(caught.value) is cls
    assert (caught.value.status_code, caught.value.message, caught.value.code) == (
        status,
        "it went wrong",
        code,
    )


def test_non_json_error_and_unreachable_server() -> None:
    client, _ = client_for(lambda r: httpx.Response(502, text="bad gateway"))
    with pytest.raises(APIError, match="bad gateway") as caught:
        client.get("trn-1")
    assert caught.value.code == "api_error"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, _ = client_for(refuse)
    with pytest.raises(ServerUnreachable, match=r"conveyor\.test"):
        client.get("trn-1")


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=details())

    Client(transport=httpx.MockTransport(handler)).get("trn-1")
    assert str(seen[-1].url).startswith("http://127.0.0.1:8120/v1/")
    assert "authorization" not in seen[-1].headers
    monkeypatch.setenv("CONVEYOR_URL", "http://elsewhere:9000/")
    monkeypatch.setenv("CONVEYOR_API_KEY", "k")
    with Client(transport=httpx.MockTransport(handler)) as client:
        client.get("trn-1")
    assert str(seen[-1].url) == "http://elsewhere:9000/v1/task-runs/trn-1"
    assert seen[-1].headers["authorization"] == "Bearer k"


@pytest.mark.anyio
async def test_async_client_shares_the_behaviour() -> None:
    answers = iter([details("pending"), details("running"), details("succeeded")])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/task-runs" and request.method == "GET":
            return httpx.Response(200, json=[{"taskRun": details(), "cursor": "c"}])
        if request.url.path == "/v1/tasks":
            return httpx.Response(200, json=[{"task": TASK, "cursor": "t"}])
        if request.url.path == "/v1/logs":
            return httpx.Response(200, text="log")
        if request.method == "DELETE":
            return httpx.Response(204)
        if request.url.path == "/v1/task-runs/missing":
            return httpx.Response(404, json={"message": "no such run", "code": "not_found"})
        return httpx.Response(202 if request.method == "POST" else 200, json=next(answers))

    async with AsyncClient("http://conveyor.test", transport=httpx.MockTransport(handler)) as c:
        run = await c.run("hello/square", [7])
        assert run.result == 49
        assert [r.id async for r in c.iter_runs()] == ["trn-1"]
        assert (await c.list(limit=1)).next_cursor == "c"
        assert [t.name for t in await c.tasks()] == ["square"]
        assert await c.logs("trn-1") == "log"
        await c.cancel("trn-1")
        with pytest.raises(NotFoundError):
            await c.get("missing")
