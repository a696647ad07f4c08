"""A minimal HTTP/1.1 server on a unix socket, as the SDKs speak to it.

A connection carries requests one after another until the client asks to close it (Render's SDKs
send ``Connection: close``; Conveyor's SDK keeps its connections open, so that a flow's
checkpoint or a run's result costs no connect). An idle connection is closed after
`IDLE_SECONDS`, and every connection when the server closes: the instance is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from scheduler import http1

logger = logging.getLogger(__name__)

IDLE_SECONDS = 60.0  # a kept-alive connection with no request for this long is closed


_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(eq=False)
class Peer:
    """The process at the other end of one connection: the kernel names it at connect time
    (SO_PEERCRED), so what was checked of it holds for every request the connection carries."""

    pid: int | None
    checked_by: object | None = None  # set by whoever checked it may use the socket


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    user_agent: str = ""  # who sent it: the SDKs name themselves and their language here
    peer: Peer | None = None  # the connecting process, shared by the connection's requests
    keep_alive: bool = True  # False: the client asked to close after the answer

    @property
    def peer_pid(self) -> int | None:
        """The connecting process, as the kernel names it (SO_PEERCRED)."""
        return self.peer.pid if self.peer is not None else None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""

    @classmethod
    def json(cls, status: int, payload: Any) -> Response:
        return cls(status, json.dumps(payload).encode())


Handler = Callable[[Request], Awaitable[Response]]


async def _read_request(reader: asyncio.StreamReader, max_body: int) -> Request | None:
    """The next request on the connection; None if the client closed it between requests."""
    try:
        data = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # closed, between requests or in the middle of one
    except asyncio.LimitOverrunError as exc:
        raise http1.BadRequest("the request's head is too long", 431) from exc
    head = http1.parse_head(data)
    try:
        body = await http1.read_body(reader, head, max_body)
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError as exc:
        raise http1.BadRequest("a chunk's size line or a trailer is too long") from exc
    path, _, query = head.target.partition("?")
    return Request(
        head.method,
        path,
        parse_qs(query) if query else {},
        body,
        user_agent=head.user_agent,
        keep_alive=head.keep_alive,
    )


async def _send(writer: asyncio.StreamWriter, response: Response, *, close: bool) -> None:
    writer.write(http1.response_bytes(response.status, response.body, close=close))
    await writer.drain()


def _peer_pid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    except OSError:
        return None
    pid, _uid, _gid = _PEERCRED.unpack(raw)
    return int(pid) or None


class UnixServer:
    """A listening socket and its open connections, closed together."""

    def __init__(self, handler: Handler, max_body: int) -> None:
        self._handler = handler
        self._max_body = max_body
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def listen(self, path: Path) -> None:
        self._server = await asyncio.start_unix_server(
            self._on_connection, path=str(path), limit=http1.MAX_HEAD
        )

    def close(self) -> None:
        """Stop listening and close every connection (a request being answered is cut)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._writers.add(writer)
        try:
            await _serve_connection(reader, writer, self._handler, self._max_body)
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _answer(handler: Handler, request: Request) -> Response:
    try:
        return await handler(request)
    except Exception:
        logger.exception("instance request %s %s failed", request.method, request.path)
        return Response.json(500, {"message": "internal error"})


async def _serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handler: Handler,
    max_body: int,
) -> None:
    """Requests on one connection, one after another, until either side closes it."""
    peer = Peer(_peer_pid(writer))
    served = 0
    while True:
        try:
            async with asyncio.timeout(IDLE_SECONDS if served else None):
                request = await _read_request(reader, max_body)
        except TimeoutError:
            return
        except http1.TooLarge:
            await _send(writer, Response.json(413, {"message": "body too large"}), close=True)
            return
        except http1.BadRequest as exc:
            await _send(writer, Response.json(exc.status, {"message": str(exc)}), close=True)
            return
        if request is None:
            return
        response = await _answer(handler, replace(request, peer=peer))
        await _send(writer, response, close=not request.keep_alive)
        served += 1
        if not request.keep_alive:
            return


async def serve_unix(path: Path, handler: Handler, *, max_body: int) -> UnixServer:
    """Listen on `path` (its folder should be 0700) and answer each request with `handler`."""
    server = UnixServer(handler, max_body)
    await server.listen(path)
    # the folder is the instance's alone (0700, its owner): a sandboxed instance that runs as
    # another uid than this process must still be able to connect
    os.chmod(path, 0o666)
    return server
