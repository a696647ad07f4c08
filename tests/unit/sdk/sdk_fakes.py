"""A strict fake of the platform's side of the instance protocol, for the SDK's tests."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h11


def b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def unb64(text: str) -> Any:
    return json.loads(base64.b64decode(text))


@dataclass
class Exchange:
    """One request the worker made."""

    method: str
    target: str
    headers: dict[str, str]
    body: Any
    connection: int  # which connection carried it, numbered from 1 in the order they opened


@dataclass
class FakePlatform:
    """Serves the instance protocol on a unix socket and checks every request's bytes.

    Children are answered by ``children[task_name](input)``: a value completes the child, an
    exception fails it. The first ``still_running_polls`` polls of each child say still running.
    A connection carries requests until the worker asks to close it, as the platform's does
    (scheduler/uds_http.py); ``close_after_each`` closes every one after its first answer,
    without saying so, as a platform that dropped an idle connection would.
    """

    socket_path: str
    input: dict[str, Any] = field(default_factory=dict)
    children: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    still_running_polls: int = 0
    fail_first: dict[str, list[int]] = field(default_factory=dict)
    requests: list[Exchange] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    close_after_each: bool = False
    connections: int = 0
    _child_runs: dict[str, tuple[str, Any]] = field(default_factory=dict)
    _polls: dict[str, int] = field(default_factory=dict)

    def of(self, target: str) -> list[Any]:
        return [r.body for r in self.requests if r.target.split("?")[0] == target]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        conn = h11.Connection(h11.SERVER)
        try:
            while await self._one(conn, number, reader, writer):
                if self.close_after_each:
                    return
                conn.start_next_cycle()
        finally:
            writer.close()

    async def _one(
        self,
        conn: h11.Connection,
        number: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answers one request; whether the connection may carry another."""
        request: h11.Request | None = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed) and request is None:
                return False  # the worker closed a connection between requests
            else:
                self.violations.append(f"unexpected event {event!r}")
                return False
        assert request is not None
        status, answer = self._route(request, body, number)
        data = b"" if answer is None else json.dumps(answer).encode()
        headers = [("Content-Length", str(len(data)))]
        if data:
            headers.append(("Content-Type", "application/json"))
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
        writer.write(conn.send(h11.Data(data=data)) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    def _route(self, request: h11.Request, raw: bytes, connection: int) -> tuple[int, Any]:
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        method, target = request.method.decode(), request.target.decode()
        if "transfer-encoding" in headers:
            self.violations.append(f"{target}: chunked body")
        body: Any = None
        if raw:
            if headers.get("content-length") != str(len(raw)):
                self.violations.append(f"{target}: Content-Length does not match the body")
            if headers.get("content-type") != "application/json":
                self.violations.append(f"{target}: body without Content-Type: application/json")
            try:
                body = json.loads(raw)
            except ValueError:
                self.violations.append(f"{target}: body is not JSON")
                return 400, {"message": "not JSON"}
        self.requests.append(Exchange(method, target, headers, body, connection))
        path = target.split("?")[0]
        failures = self.fail_first.get(path)
        if failures:
            return failures.pop(0), {"message": "try again"}
        return self._answer(method, path, body)

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if (method, path) == ("GET", "/input"):
            return 200, self.input
        if (method, path) in (("POST", "/callback"), ("POST", "/register-tasks")):
            return 200, None
        if (method, path) == ("POST", "/run-subtask"):
            keys = {"task_name", "input", "idempotency_key", "created_at"}
            if set(body) != keys:
                self.violations.append(f"/run-subtask keys {sorted(body)}")
            run_id = f"trn-child-{len(self._child_runs) + 1}"
            self._child_runs[run_id] = (body["task_name"], unb64(body["input"]))
            return 200, {"task_run_id": run_id}
        if (method, path) == ("POST", "/get-subtask-result"):
            return 200, self._child_result(body["task_run_id"])
        self.violations.append(f"unknown request {method} {path}")
        return 404, {"message": "unknown"}

    def _child_result(self, run_id: str) -> dict[str, Any]:
        polls = self._polls[run_id] = self._polls.get(run_id, 0) + 1
        if polls <= self.still_running_polls:
            return {"still_running": True}
        name, payload = self._child_runs[run_id]
        try:
            value = self.children[name](payload)
        except Exception as exc:
            details = f"{type(exc).__name__}: {exc}"
            return {"still_running": False, "error": {"details": details, "stack_trace": "tb"}}
        output = value if isinstance(value, list) else [value]
        return {"still_running": False, "complete": {"output": b64(output)}}
