"""`Client` and `AsyncClient`: thin drivers of the operations in `_client_base`."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from conveyor import _client_base as ops
from conveyor._client_base import Call, ClientConfig, Operation
from conveyor._models import Page, Task, TaskRun

T = TypeVar("T")
Input = builtins.list[Any] | dict[str, Any] | None


class Client:
    """Blocking client of the Conveyor REST API.

    Example:
        ```python
        with Client() as client:
            run = client.run("hello/square", [3])
            print(run.result)
        ```
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Creates the client; nothing is sent until a method is called.

        Args:
            base_url: The server; ``CONVEYOR_URL`` or ``http://127.0.0.1:8120`` by default.
            api_key: Bearer token; ``CONVEYOR_API_KEY`` by default.
            timeout: Seconds for each request (long polls add their hold time).
            transport: An httpx transport, e.g. ``httpx.MockTransport`` in tests.
        """
        self._config = ClientConfig.resolve(base_url, api_key, timeout)
        self._http = httpx.Client(
            base_url=self._config.base_url, headers=self._config.headers, transport=transport
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connection pool."""
        self._http.close()

    def _drive(self, operation: Operation[T]) -> T:
        try:
            call = next(operation)
            while True:
                call = operation.send(self._send(call))
        except StopIteration as done:
            result: T = done.value
            return result

    def _send(self, call: Call) -> httpx.Response:
        try:
            return self._http.request(
                call.method,
                call.path,
                params=call.params,
                json=call.json,
                timeout=self._config.timeout_for(call),
            )
        except httpx.TransportError as exc:
            raise self._config.unreachable(exc) from exc

    def start(
        self, task: str, input: Input = None, *, idempotency_key: str | None = None
    ) -> TaskRun:
        """Starts a run.

        Args:
            task: ``workflow/task[:version]``, or a bare task name that only one workflow has.
            input: A list (positional) or dict (keywords); ``[]`` when None.
            idempotency_key: Same key within 24 h returns the first run.

        Returns:
            The new (pending) run.
        """
        return self._drive(ops.start(task, input, idempotency_key))

    def get(self, run_id: str) -> TaskRun:
        """The run with its details (results, error, input, attempts)."""
        return self._drive(ops.get(run_id))

    def wait(self, run_id: str, *, timeout: float | None = None) -> TaskRun:
        """Waits for a run to end.

        Args:
            run_id: The run.
            timeout: Seconds to wait at most; None waits as long as it takes.

        Returns:
            The ended run.

        Raises:
            WaitTimeout: The run did not end in time.
        """
        return self._drive(ops.wait(run_id, timeout))

    def run(
        self,
        task: str,
        input: Input = None,
        *,
        timeout: float | None = None,
        raise_on_failure: bool = True,
        idempotency_key: str | None = None,
    ) -> TaskRun:
        """Starts a run and waits for it to end.

        Args:
            task: As for `start`.
            input: As for `start`.
            timeout: As for `wait`.
            raise_on_failure: Raise `TaskRunFailed` when the run fails or is canceled.
            idempotency_key: As for `start`.

        Returns:
            The ended run; its ``result`` is the task's return value.
        """
        return self._drive(ops.run(task, input, timeout, raise_on_failure, idempotency_key))

    def list(
        self,
        *,
        status: str | None = None,
        task: str | None = None,
        root_id: str | None = None,
        parent_id: str | None = None,
        roots_only: bool = False,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page:
        """One page of runs, newest first.

        Args:
            status: Only runs in this status.
            task: Only runs of this task slug.
            root_id: Only runs of this tree.
            parent_id: Only children of this run.
            roots_only: Only root runs.
            limit: Page size, 1-100.
            cursor: ``next_cursor`` of the previous page.

        Returns:
            The page.
        """
        return self._drive(
            ops.list_runs(
                status=status,
                task=task,
                root_id=root_id,
                parent_id=parent_id,
                roots_only=roots_only,
                limit=limit,
                cursor=cursor,
            )
        )

    def iter_runs(self, **filters: Any) -> Iterator[TaskRun]:
        """Every run matching the filters of `list`, page after page."""
        cursor = filters.pop("cursor", None)
        while True:
            page = self.list(cursor=cursor, **filters)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def cancel(self, run_id: str) -> None:
        """Cancels a run and its unfinished descendants (an ended run is left alone)."""
        self._drive(ops.cancel(run_id))

    def tasks(self) -> builtins.list[Task]:
        """Every task of every workflow's active version."""
        return self._drive(ops.tasks())

    def logs(self, run_id: str, *, attempt: int | None = None) -> str:
        """The captured stdout and stderr of an attempt (the latest by default)."""
        return self._drive(ops.logs(run_id, attempt))


class AsyncClient:
    """Asyncio client of the Conveyor REST API; the same methods as `Client`, awaited."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Creates the client; nothing is sent until a method is called.

        Args:
            base_url: The server; ``CONVEYOR_URL`` or ``http://127.0.0.1:8120`` by default.
            api_key: Bearer token; ``CONVEYOR_API_KEY`` by default.
            timeout: Seconds for each request (long polls add their hold time).
            transport: An httpx transport, e.g. ``httpx.MockTransport`` in tests.
        """
        self._config = ClientConfig.resolve(base_url, api_key, timeout)
        self._http = httpx.AsyncClient(
            base_url=self._config.base_url, headers=self._config.headers, transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the connection pool."""
        await self._http.aclose()

    async def _drive(self, operation: Operation[T]) -> T:
        try:
            call = next(operation)
            while True:
                call = operation.send(await self._send(call))
        except StopIteration as done:
            result: T = done.value
            return result

    async def _send(self, call: Call) -> httpx.Response:
        try:
            return await self._http.request(
                call.method,
                call.path,
                params=call.params,
                json=call.json,
                timeout=self._config.timeout_for(call),
            )
        except httpx.TransportError as exc:
            raise self._config.unreachable(exc) from exc

    async def start(
        self, task: str, input: Input = None, *, idempotency_key: str | None = None
    ) -> TaskRun:
        """Starts a run; see `Client.start`."""
        return await self._drive(ops.start(task, input, idempotency_key))

    async def get(self, run_id: str) -> TaskRun:
        """The run with its details; see `Client.get`."""
        return await self._drive(ops.get(run_id))

    # `timeout` bounds a server-side wait, not this coroutine; the name matches `Client`.
    async def wait(self, run_id: str, *, timeout: float | None = None) -> TaskRun:
        """Waits for a run to end; see `Client.wait`."""
        return await self._drive(ops.wait(run_id, timeout))

    async def run(
        self,
        task: str,
        input: Input = None,
        *,
        timeout: float | None = None,
        raise_on_failure: bool = True,
        idempotency_key: str | None = None,
    ) -> TaskRun:
        """Starts a run and waits for it; see `Client.run`."""
        return await self._drive(ops.run(task, input, timeout, raise_on_failure, idempotency_key))

    async def list(
        self,
        *,
        status: str | None = None,
        task: str | None = None,
        root_id: str | None = None,
        parent_id: str | None = None,
        roots_only: bool = False,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page:
        """One page of runs, newest first; see `Client.list`."""
        return await self._drive(
            ops.list_runs(
                status=status,
                task=task,
                root_id=root_id,
                parent_id=parent_id,
                roots_only=roots_only,
                limit=limit,
                cursor=cursor,
            )
        )

    async def iter_runs(self, **filters: Any) -> AsyncIterator[TaskRun]:
        """Every run matching the filters of `list`, page after page."""
        cursor = filters.pop("cursor", None)
        while True:
            page = await self.list(cursor=cursor, **filters)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def cancel(self, run_id: str) -> None:
        """Cancels a run and its unfinished descendants; see `Client.cancel`."""
        await self._drive(ops.cancel(run_id))

    async def tasks(self) -> builtins.list[Task]:
        """Every task of every workflow's active version."""
        return await self._drive(ops.tasks())

    async def logs(self, run_id: str, *, attempt: int | None = None) -> str:
        """The captured output of an attempt; see `Client.logs`."""
        return await self._drive(ops.logs(run_id, attempt))
