"""The REST client's logic, free of I/O: each operation is a generator of HTTP calls.

An operation yields a `Call`, receives the `httpx.Response`, and returns its parsed value;
`Client` drives it with blocking I/O and `AsyncClient` with asyncio, so both share every
request, parse, loop and error rule.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from conveyor._models import Page, RunStatus, Task, TaskRun
from conveyor.errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    ServerUnreachable,
    TaskRunFailed,
    WaitTimeout,
)

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8120"
MAX_WAIT_S = 30
TASKS_PAGE = 100

_ERRORS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: InvalidRequestError,
}


@dataclass(frozen=True)
class Call:
    """One HTTP request of an operation.

    Attributes:
        method: HTTP method.
        path: Path under the base URL.
        params: Query parameters.
        json: JSON body, if any.
        hold_s: Seconds the server may hold the answer (added to the timeout).
    """

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    hold_s: float = 0.0


Operation = Generator[Call, httpx.Response, T]


@dataclass(frozen=True)
class ClientConfig:
    """Where the server is and how to authenticate.

    Attributes:
        base_url: The server's URL, without ``/v1``.
        api_key: The bearer token, if any.
        timeout: Seconds for each request (plus any hold).
    """

    base_url: str
    api_key: str | None
    timeout: float

    @classmethod
    def resolve(cls, base_url: str | None, api_key: str | None, timeout: float) -> ClientConfig:
        """Fills unset values from ``CONVEYOR_URL`` and ``CONVEYOR_API_KEY``."""
        url = base_url or os.environ.get("CONVEYOR_URL") or DEFAULT_URL
        key = api_key if api_key is not None else os.environ.get("CONVEYOR_API_KEY") or None
        return cls(base_url=url.rstrip("/"), api_key=key, timeout=timeout)

    @property
    def headers(self) -> dict[str, str]:
        """Headers sent with every request."""
        headers = {"Accept": "application/json", "User-Agent": "conveyor-sdk"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def timeout_for(self, call: Call) -> float:
        """The timeout of one call."""
        return self.timeout + call.hold_s

    def unreachable(self, exc: httpx.TransportError) -> ServerUnreachable:
        """The error for a transport failure."""
        return ServerUnreachable(f"cannot reach the Conveyor server at {self.base_url}: {exc}")


def send(call: Call) -> Operation[httpx.Response]:
    """Yields one call and raises the matching `APIError` for an error status."""
    response = yield call
    if response.status_code >= 400:
        raise api_error(response)
    return response


def api_error(response: httpx.Response) -> APIError:
    """The error for an error answer (``{"message", "code"}`` when the body is JSON)."""
    message, code = response.text.strip() or response.reason_phrase, None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = str(body.get("message") or message)
        code = body["code"] if isinstance(body.get("code"), str) else None
    cls = _ERRORS.get(response.status_code, APIError)
    return cls(response.status_code, message, code)


def _parse(model: Callable[[Any], T], response: httpx.Response) -> T:
    try:
        return model(response.json())
    except (ValueError, ValidationError, KeyError, TypeError) as exc:
        raise APIError(response.status_code, f"unexpected answer: {exc}", "bad_response") from None


def start(
    task: str, input: list[Any] | dict[str, Any] | None, idempotency_key: str | None
) -> Operation[TaskRun]:
    """``POST /v1/task-runs``."""
    body: dict[str, Any] = {"task": task, "input": [] if input is None else input}
    if idempotency_key is not None:
        body["idempotencyKey"] = idempotency_key
    response = yield from send(Call("POST", "/v1/task-runs", json=body))
    return _parse(TaskRun.model_validate, response)


def get(run_id: str, wait: float | None = None) -> Operation[TaskRun]:
    """``GET /v1/task-runs/{id}``, optionally held until the run ends or ``wait`` passes."""
    params = {} if wait is None else {"wait": str(int(wait))}
    call = Call("GET", f"/v1/task-runs/{run_id}", params=params, hold_s=wait or 0.0)
    response = yield from send(call)
    return _parse(TaskRun.model_validate, response)


def wait(
    run_id: str, timeout: float | None, clock: Callable[[], float] = time.monotonic
) -> Operation[TaskRun]:
    """Long-polls a run until it ends; raises `WaitTimeout` after ``timeout`` seconds."""
    deadline = None if timeout is None else clock() + timeout
    while True:
        left = MAX_WAIT_S if deadline is None else math.ceil(deadline - clock())
        hold = max(0, min(MAX_WAIT_S, left))
        run = yield from get(run_id, wait=hold)
        if run.is_terminal:
            return run
        if deadline is not None and clock() >= deadline:
            raise WaitTimeout(run_id, timeout or 0.0)


def run(
    task: str,
    input: list[Any] | dict[str, Any] | None,
    timeout: float | None,
    raise_on_failure: bool,
    idempotency_key: str | None = None,
) -> Operation[TaskRun]:
    """Starts a run and waits for it; raises `TaskRunFailed` if asked and it did not succeed."""
    started = yield from start(task, input, idempotency_key)
    ended = yield from wait(started.id, timeout)
    if raise_on_failure and ended.status is not RunStatus.SUCCEEDED:
        raise TaskRunFailed(ended.id, ended.task_slug or task, ended.error, ended.status.value)
    return ended


def list_runs(
    *,
    status: str | None,
    task: str | None,
    root_id: str | None,
    parent_id: str | None,
    roots_only: bool,
    limit: int,
    cursor: str | None,
) -> Operation[Page]:
    """``GET /v1/task-runs`` with filters; one page."""
    params = {"limit": str(limit)}
    optional = {
        "status": status,
        "taskSlug": task,
        "rootTaskRunId": root_id,
        "parentTaskRunId": parent_id,
        "cursor": cursor,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    if roots_only:
        params["rootsOnly"] = "true"
    response = yield from send(Call("GET", "/v1/task-runs", params=params))
    return _parse(lambda body: _page(body, limit), response)


def _page(body: Any, limit: int) -> Page:
    rows = _rows(body)
    items = [TaskRun.model_validate(row["taskRun"]) for row in rows]
    last = rows[-1].get("cursor") if rows and len(rows) >= limit else None
    return Page(items=items, next_cursor=last if isinstance(last, str) and last else None)


def _rows(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list) or not all(isinstance(row, dict) for row in body):
        raise ValueError("expected a JSON array of objects")
    return body


def cancel(run_id: str) -> Operation[None]:
    """``DELETE /v1/task-runs/{id}``."""
    yield from send(Call("DELETE", f"/v1/task-runs/{run_id}"))


def tasks() -> Operation[list[Task]]:
    """``GET /v1/tasks``, every page."""
    found: list[Task] = []
    cursor: str | None = None
    while True:
        params = {"limit": str(TASKS_PAGE)} | ({"cursor": cursor} if cursor else {})
        response = yield from send(Call("GET", "/v1/tasks", params=params))
        page, cursor = _parse(_task_page, response)
        found.extend(page)
        if cursor is None:
            return found


def _task_page(body: Any) -> tuple[list[Task], str | None]:
    rows = _rows(body)
    last = rows[-1].get("cursor") if len(rows) >= TASKS_PAGE else None
    found = [Task.model_validate(row["task"]) for row in rows]
    return found, last if isinstance(last, str) and last else None


def logs(run_id: str, attempt: int | None) -> Operation[str]:
    """``GET /v1/logs?taskRun=…``: the attempt's captured output."""
    params = {"taskRun": run_id} | ({"attempt": str(attempt)} if attempt is not None else {})
    response = yield from send(Call("GET", "/v1/logs", params=params))
    return response.text
