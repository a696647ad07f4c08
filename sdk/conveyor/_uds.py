"""HTTP/1.1 over the instance's unix socket: JSON bodies, retries.

Connections are kept open for the next request: on this thread (a sync task: its input, its
result) one connection (`conveyor._uds_thread`, on the socket module alone), on the event loop
(children, flow steps) one per request in flight (`conveyor._uds_async`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from conveyor._uds_thread import MAX_HEAD_BYTES, KeptSocket
from conveyor.errors import WorkerError

if TYPE_CHECKING:
    from conveyor._uds_async import KeptConnections

logger = logging.getLogger("conveyor.worker")

REQUEST_TIMEOUT_S = 15.0
MAX_TRIES = 25
FIRST_DELAY_S = 0.25
MAX_DELAY_S = 16.0

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


class _Retryable(Exception):
    """A transport failure, a 5xx or a 429: worth sending again."""


def _request_bytes(method: str, target: str, body: bytes | None) -> bytes:
    head = [
        f"{method} {target} HTTP/1.1",
        "Host: localhost",
        "Accept: application/json",
        "User-Agent: conveyor",
    ]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + (body or b"")


async def _exchange_async(
    connections: KeptConnections, method: str, target: str, body: bytes | None, timeout: float
) -> bytes:
    """One request on the event loop: no thread per request, so a parent can hold a request
    open for each of many children at once."""
    import asyncio

    request = _request_bytes(method, target, body)
    try:
        answer = await asyncio.wait_for(connections.exchange(request), timeout)
    except (OSError, TimeoutError) as exc:
        raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
    return _content(method, target, answer)


def _content(method: str, target: str, answer: bytes) -> bytes:
    """The body of a successful answer; _Retryable for a 5xx or 429, WorkerError for a 4xx."""
    status, content = _parse(answer)
    if status >= 500 or status == 429:
        raise _Retryable(f"status {status}: {_message(content)}")
    if status >= 400:
        raise WorkerError(f"{method} {target} failed with status {status}: {_message(content)}")
    return content


def _parse(answer: bytes) -> tuple[int, bytes]:
    """(status, body) of a whole response; _Retryable if it is cut short or malformed."""
    head, separator, body = answer.partition(b"\r\n\r\n")
    if not separator or len(head) > MAX_HEAD_BYTES:
        raise _Retryable("the platform's answer ended before its headers did")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise _Retryable(f"not an HTTP/1.1 status line: {status_line!r}")
    for line in header_lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip()) if value.strip().isdigit() else -1
            if length < 0 or len(body) < length:
                raise _Retryable("the platform's answer ended before its body did")
            body = body[:length]
    return int(parts[1]), body


def _message(content: bytes) -> str:
    text = content.decode("utf-8", "replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        return text or "(empty body)"
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return str(payload["message"])
    return text


def async_sleep(seconds: float) -> Awaitable[None]:
    """`asyncio.sleep`, imported when first needed."""
    import asyncio  # only runs with children or async tasks import it

    return asyncio.sleep(seconds)


class SocketClient:
    """Sends requests to the platform's socket over connections it keeps open: one on this
    thread, one per request in flight on the event loop."""

    def __init__(
        self,
        path: str,
        *,
        timeout: float = REQUEST_TIMEOUT_S,
        max_tries: int = MAX_TRIES,
        sleep: Sleep = async_sleep,
    ) -> None:
        """Nothing is opened until a request is made.

        Args:
            path: The unix socket's path.
            timeout: Socket timeout of each request.
            max_tries: Tries for a transport error, 5xx or 429.
            sleep: How to wait between tries (in an event loop).
        """
        self._path = path
        self._timeout = timeout
        self._max_tries = max_tries
        self._sleep = sleep
        self._kept = KeptSocket(path)
        self._connections: KeptConnections | None = None

    def request_sync(self, method: str, target: str, body: dict[str, Any] | None = None) -> Any:
        """As `request`, on this thread: for a run that needs no event loop.

        Args:
            method: ``GET`` or ``POST``.
            target: The path, e.g. ``/input``.
            body: The JSON body, if any.

        Returns:
            The decoded JSON answer, None for an empty body.
        """
        data = _encode(body)
        for attempt, delay in self._tries():
            try:
                return _decode(method, target, self._send(method, target, data))
            except _Retryable as exc:
                self._give_up_or_warn(method, target, exc, attempt, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def request(self, method: str, target: str, body: dict[str, Any] | None = None) -> Any:
        """Sends one request, retrying transport errors, 5xx and 429 with the same body.

        Each request in flight has a connection of its own on the event loop (kept open for the
        next), so that requests for many children go at once, each held open by the platform
        until its child ends.

        Args:
            method: ``GET`` or ``POST``.
            target: The path, e.g. ``/input``.
            body: The JSON body, if any.

        Returns:
            The decoded JSON answer, None for an empty body.

        Raises:
            WorkerError: A 4xx, a non-JSON answer, or the tries are spent.
        """
        if self._connections is None:
            from conveyor._uds_async import KeptConnections  # imports asyncio

            self._connections = KeptConnections(self._path)
        data = _encode(body)
        for attempt, delay in self._tries():
            try:
                content = await _exchange_async(
                    self._connections, method, target, data, self._timeout
                )
                return _decode(method, target, content)
            except _Retryable as exc:
                self._give_up_or_warn(method, target, exc, attempt, delay)
                await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def closing(self, awaitable: Awaitable[T]) -> T:
        """`awaitable`'s result; then the connections it left open are closed (an event loop's
        connections are of no use once it ends)."""
        try:
            return await awaitable
        finally:
            await self.close_connections()

    async def close_connections(self) -> None:
        """Closes the connections kept open on this event loop, and on the thread."""
        if self._connections is not None:
            await self._connections.close()
        self.close()

    def close(self) -> None:
        """Closes the connection kept open on the thread."""
        self._kept.close()

    def _send(self, method: str, target: str, data: bytes | None) -> bytes:
        try:
            answer = self._kept.exchange(_request_bytes(method, target, data), self._timeout)
        except OSError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        return _content(method, target, answer)

    def _tries(self) -> Iterator[tuple[int, float]]:
        """Each try's number, and the delay before the next should it fail."""
        delay = FIRST_DELAY_S
        for attempt in range(1, self._max_tries + 1):
            yield attempt, delay
            delay = min(delay * 2, MAX_DELAY_S)

    def _give_up_or_warn(
        self, method: str, target: str, exc: Exception, attempt: int, delay: float
    ) -> None:
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


def _encode(body: dict[str, Any] | None) -> bytes | None:
    return None if body is None else json.dumps(body).encode("utf-8")


def _decode(method: str, target: str, content: bytes) -> Any:
    if not content.strip():
        return None
    try:
        return json.loads(content)
    except ValueError as exc:
        raise WorkerError(f"{method} {target} answered with non-JSON: {exc}") from None
