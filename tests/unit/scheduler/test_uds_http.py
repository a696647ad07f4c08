"""The instance socket's HTTP server: requests one after another on a kept-alive connection,
closed when the client asks, when idle, and when the server closes."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from scheduler import uds_http
from scheduler.uds_http import Request, Response, UnixServer, serve_unix

pytestmark = pytest.mark.anyio

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def socket_path() -> Iterator[Path]:
    folder = tempfile.mkdtemp(prefix="cvuds", dir="/tmp")  # a socket path is short
    yield Path(folder) / "s"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def server(socket_path: Path) -> AsyncIterator[UnixServer]:
    async def echo(request: Request) -> Response:
        return Response.json(200, {"path": request.path, "pid": request.peer_pid})

    server = await serve_unix(socket_path, echo, max_body=100)
    yield server
    server.close()
    await server.wait_closed()


def _request(path: str, *, close: bool = False, body: bytes = b"") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(head, body) of one response."""
    async with asyncio.timeout(10):
        head = (await reader.readuntil(b"\r\n\r\n"))[:-4]
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return head, await reader.readexactly(length)


async def _closed(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(10):
        return await reader.read() == b""


async def test_a_connection_carries_requests_one_after_another(
    server: UnixServer, socket_path: Path
) -> None:
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    for path in ("/a", "/b", "/c"):
        writer.write(_request(path))
        head, body = await _answer(reader)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"connection: close" not in head.lower()
        assert body.startswith(b'{"path": "' + path.encode() + b'", "pid": ')
    writer.close()


async def test_a_request_that_asks_to_close_is_answered_then_closed(
    server: UnixServer, socket_path: Path
) -> None:
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    writer.write(_request("/a", close=True))
    head, _ = await _answer(reader)
    assert b"connection: close" in head.lower()
    assert await _closed(reader)
    writer.close()


async def test_a_body_too_large_is_refused_and_closes_the_connection(
    server: UnixServer, socket_path: Path
) -> None:
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    writer.write(_request("/a", body=b"x" * 101))
    head, body = await _answer(reader)
    assert head.startswith(b"HTTP/1.1 413 ") and b"connection: close" in head.lower()
    assert body == b'{"message": "body too large"}'
    assert await _closed(reader)
    writer.close()


async def test_an_idle_connection_is_closed_after_its_idle_time(
    server: UnixServer, socket_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uds_http, "IDLE_SECONDS", 0.05)
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    writer.write(_request("/a"))
    await _answer(reader)
    assert await _closed(reader)
    writer.close()


async def test_closing_the_server_closes_its_kept_connections(
    server: UnixServer, socket_path: Path
) -> None:
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    writer.write(_request("/a"))
    await _answer(reader)
    server.close()
    assert await _closed(reader)
    writer.close()
