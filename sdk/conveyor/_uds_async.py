"""Requests on the event loop over kept-alive connections to the instance's socket.

A flow checkpoints every step with a request or two: opening a connection for each cost about as
much as the platform's work on it. Connections are kept open between requests and reused, one per
request in flight; idle ones are dropped after `IDLE_SECONDS` (under the platform's own idle
limit), and all of them when the process (a fork) or the event loop is not the one that opened
them. A request on a reused connection that the platform had closed is sent again on a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from os import getpid
from time import monotonic

from conveyor._uds_thread import MAX_HEAD_BYTES, Stale, framing

IDLE_SECONDS = 20.0  # the platform closes a connection idle for 60 s (scheduler/uds_http.py)
MAX_IDLE = 8  # connections kept for reuse; more run at once only while requests are in flight


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class Answer:
    """A whole response: its head (status line and headers) and its body."""

    head: bytes
    body: bytes
    keep: bool  # the connection may carry another request


class KeptConnections:
    """Connections to one socket path, reused across requests of this process and loop."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._idle: list[_Connection] = []
        self._pid = 0
        self._loop: asyncio.AbstractEventLoop | None = None  # held: its id is not reused

    async def exchange(self, request: bytes) -> bytes:
        """Sends `request` (which must not ask to close) and returns the whole answer as bytes:
        its head, a blank line and its body."""
        reused = self._take()
        if reused is not None:
            try:
                return await self._exchange(reused, request)
            except Stale:
                pass
        connection = _Connection(*await asyncio.open_unix_connection(self._path))
        try:
            return await self._exchange(connection, request)
        except Stale as exc:
            message = "the platform closed the connection before answering"
            raise ConnectionResetError(message) from exc

    async def _exchange(self, connection: _Connection, request: bytes) -> bytes:
        done = False
        try:
            connection.writer.write(request)
            await connection.writer.drain()
            answer = await _read_answer(connection.reader)
            done = True
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                raise ConnectionResetError("the platform's answer was cut short") from exc
            raise Stale from exc
        finally:
            if not done:
                connection.close()
        if answer.keep:
            self._give(connection)
        else:
            connection.close()
        return answer.head + b"\r\n\r\n" + answer.body

    async def close(self) -> None:
        """Closes the idle connections of this process and loop."""
        self._forget_others()
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        for connection in idle:
            with contextlib.suppress(ConnectionError):
                await connection.writer.wait_closed()

    def _take(self) -> _Connection | None:
        self._forget_others()
        now = monotonic()
        while self._idle:
            connection = self._idle.pop()
            fresh = now - connection.idle_since < IDLE_SECONDS
            if fresh and not connection.writer.is_closing() and not connection.reader.at_eof():
                return connection
            connection.close()
        return None

    def _give(self, connection: _Connection) -> None:
        if len(self._idle) >= MAX_IDLE:
            connection.close()
            return
        connection.idle_since = monotonic()
        self._idle.append(connection)

    def _forget_others(self) -> None:
        """Connections of another process (before a fork) or loop are not this one's to use."""
        loop = asyncio.get_running_loop()
        if (getpid(), loop) != (self._pid, self._loop):
            # dropped, not closed: their loop is not running here to close them
            self._idle = []
            self._pid, self._loop = getpid(), loop


async def _read_answer(reader: asyncio.StreamReader) -> Answer:
    """One response: up to its blank line, then its Content-Length of body (to the end when it
    has none)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise ConnectionResetError("the platform's answer has a head too large") from exc
    head = head[:-4]
    if len(head) > MAX_HEAD_BYTES:
        raise ConnectionResetError("the platform's answer has a head too large")
    length, keep = framing(head)
    if length is None:
        return Answer(head, await reader.read(), keep=False)
    return Answer(head, await reader.readexactly(length), keep=keep)
