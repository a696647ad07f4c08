"""HTTP/1.1 over the instance's unix socket: one request per connection, JSON bodies, retries."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from conveyor.errors import WorkerError

logger = logging.getLogger("conveyor.worker")

REQUEST_TIMEOUT_S = 15.0
MAX_TRIES = 25
FIRST_DELAY_S = 0.25
MAX_DELAY_S = 16.0

Sleep = Callable[[float], Awaitable[None]]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _Retryable(Exception):
    """A 5xx or 429 answer: worth sending again."""


def _exchange(path: str, method: str, target: str, body: bytes | None, timeout: float) -> bytes:
    conn = _UnixConnection(path, timeout)
    headers = {"Connection": "close", "Accept": "application/json", "User-Agent": "conveyor"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        status, content = response.status, response.read()
    finally:
        conn.close()
    if status >= 500 or status == 429:
        raise _Retryable(f"status {status}: {_message(content)}")
    if status >= 400:
        raise WorkerError(f"{method} {target} failed with status {status}: {_message(content)}")
    return content


def _message(content: bytes) -> str:
    text = content.decode("utf-8", "replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        return text or "(empty body)"
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return str(payload["message"])
    return text


class SocketClient:
    """Sends requests to the platform's socket, one connection each, from worker threads."""

    def __init__(
        self,
        path: str,
        *,
        timeout: float = REQUEST_TIMEOUT_S,
        max_tries: int = MAX_TRIES,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Nothing is opened until a request is made.

        Args:
            path: The unix socket's path.
            timeout: Socket timeout of each request.
            max_tries: Tries for a transport error, 5xx or 429.
            sleep: How to wait between tries.
        """
        self._path = path
        self._timeout = timeout
        self._max_tries = max_tries
        self._sleep = sleep

    async def request(self, method: str, target: str, body: dict[str, Any] | None = None) -> Any:
        """Sends one request, retrying transport errors, 5xx and 429 with the same body.

        Args:
            method: ``GET`` or ``POST``.
            target: The path, e.g. ``/input``.
            body: The JSON body, if any.

        Returns:
            The decoded JSON answer, None for an empty body.

        Raises:
            WorkerError: A 4xx, a non-JSON answer, or the tries are spent.
        """
        data = None if body is None else json.dumps(body).encode("utf-8")
        delay = FIRST_DELAY_S
        for attempt in range(1, self._max_tries + 1):
            try:
                content = await asyncio.to_thread(
                    _exchange, self._path, method, target, data, self._timeout
                )
            except (_Retryable, OSError, http.client.HTTPException) as exc:
                if attempt >= self._max_tries:
                    raise WorkerError(f"{method} {target} failed: {exc}") from exc
                logger.warning(
                    "%s %s failed (%d/%d), retrying in %.2fs: %s",
                    method,
                    target,
                    attempt,
                    self._max_tries,
                    delay,
                    exc,
                )
                await self._sleep(delay)
                delay = min(delay * 2, MAX_DELAY_S)
                continue
            return _decode(method, target, content)
        raise AssertionError("unreachable")  # pragma: no cover


def _decode(method: str, target: str, content: bytes) -> Any:
    if not content.strip():
        return None
    try:
        return json.loads(content)
    except ValueError as exc:
        raise WorkerError(f"{method} {target} answered with non-JSON: {exc}") from None
