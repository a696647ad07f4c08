"""The instance socket's request framing: each rule of what is taken and what is refused."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scheduler.http1 import BadRequest, RequestHead, parse_head, response_bytes
from scheduler.uds_http import Request, Response, UnixServer, serve_unix

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _head(*lines: str, request_line: str = "POST /callback HTTP/1.1") -> bytes:
    return "\r\n".join((request_line, *lines)).encode() + b"\r\n\r\n"


def test_a_request_from_an_sdk_is_read_whole() -> None:
    head = parse_head(
        _head(
            "Host: localhost",
            "User-Agent: render-sdk-python/0.8.0",
            "Content-Type: application/json",
            "Content-Length: 17",
            request_line="POST /callback?attempt=a1 HTTP/1.1",
        )
    )
    assert head == RequestHead(
        method="POST",
        target="/callback?attempt=a1",
        user_agent="render-sdk-python/0.8.0",
        keep_alive=True,
        content_length=17,
    )


@pytest.mark.parametrize(
    ("request_line", "connection", "keep_alive"),
    [
        ("GET /input HTTP/1.1", None, True),
        ("GET /input HTTP/1.1", "Connection: close", False),
        ("GET /input HTTP/1.1", "Connection: CLOSE", False),
        ("GET /input HTTP/1.1", "Connection: keep-alive, close", False),
        ("GET /input HTTP/1.1", "Connection: keep-alive", True),
        ("GET /input HTTP/1.0", None, False),
        ("GET /input HTTP/1.0", "Connection: keep-alive", False),
    ],
)
def test_a_connection_is_kept_only_for_http_1_1_without_close(
    request_line: str, connection: str | None, keep_alive: bool
) -> None:
    lines = ["Host: x"] + ([connection] if connection else [])
    assert parse_head(_head(*lines, request_line=request_line)).keep_alive is keep_alive


@pytest.mark.parametrize(
    ("lines", "length"),
    [
        ((), 0),
        (("Content-Length: 0",), 0),
        (("Content-Length: 12",), 12),
        (("Content-Length:12",), 12),
        (("Content-Length: 12, 12",), 12),
        (("Content-Length: 12", "content-length: 12"), 12),
        (("Transfer-Encoding: chunked",), None),
        (("Transfer-Encoding: Chunked",), None),
    ],
)
def test_the_body_is_framed_by_its_length_or_by_chunks(
    lines: tuple[str, ...], length: int | None
) -> None:
    assert parse_head(_head("Host: x", *lines)).content_length == length


@pytest.mark.parametrize(
    ("lines", "status", "message"),
    [
        (("Content-Length: 1, 2",), 400, "content-length given twice, differently"),
        (("Content-Length: 1", "Content-Length: 2"), 400, "given twice"),
        (("Content-Length: -1",), 400, "content-length '-1'"),
        (("Content-Length: +5",), 400, "content-length '+5'"),
        (("Content-Length: 0x10",), 400, "content-length '0x10'"),
        (("Content-Length: ",), 400, "content-length ''"),
        (("Content-Length: 1", "Transfer-Encoding: chunked"), 400, "ambiguous"),
        (("Transfer-Encoding: gzip, chunked",), 501, "transfer-encoding 'gzip, chunked'"),
        (("Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), 501, "transfer-encoding"),
        ((" folded: header",), 400, "malformed header line"),
        (("Host : x",), 400, "malformed header line"),
        (("no colon",), 400, "malformed header line"),
        ((": empty name",), 400, "malformed header line"),
        (("Host: x\ny: z",), 400, "bare CR or LF"),
        (("Host: x\rstill",), 400, "bare CR or LF"),
        (("Host: a\0b",), 400, "NUL"),
    ],
)
def test_a_head_that_frames_badly_is_refused(
    lines: tuple[str, ...], status: int, message: str
) -> None:
    with pytest.raises(BadRequest, match=re.escape(message)) as refused:
        parse_head(_head("Host: x", *lines))
    assert refused.value.status == status


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        ("POST /callback HTTP/2.0", 505),
        ("POST /callback HTTP/1.2", 505),
        ("POST /callback http/1.1", 505),
        ("POST  /callback HTTP/1.1", 400),
        ("POST /callback", 400),
        ("POST /a b HTTP/1.1", 400),
        ("PO(ST /callback HTTP/1.1", 400),
        ("POST /caf\xe9 HTTP/1.1", 400),
    ],
)
def test_a_request_line_other_than_method_target_version_is_refused(
    request_line: str, status: int
) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_head(_head("Host: x", request_line=request_line))
    assert refused.value.status == status


def test_a_response_is_written_whole() -> None:
    assert response_bytes(200, b'{"a":1}', close=False) == (
        b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{"a":1}'
    )
    assert response_bytes(413, b"", close=True) == (
        b"HTTP/1.1 413 Request Entity Too Large\r\ncontent-type: application/json\r\n"
        b"content-length: 0\r\nconnection: close\r\n\r\n"
    )


# -- through a real socket ------------------------------------------------------------------


@pytest.fixture
async def echo_server() -> AsyncIterator[Path]:
    folder = tempfile.mkdtemp(prefix="cvh1", dir="/tmp")  # a socket path is short
    path = Path(folder) / "s"

    async def echo(request: Request) -> Response:
        return Response.json(
            200, {"path": request.path, "query": request.query, "body": request.body.decode()}
        )

    server: UnixServer = await serve_unix(path, echo, max_body=20)
    yield path
    server.close()
    await server.wait_closed()
    shutil.rmtree(folder, ignore_errors=True)


async def _exchange(
    path: Path, data: bytes, answers: int = 1
) -> list[tuple[int, dict[str, object]]]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(data)
    out = []
    async with asyncio.timeout(10):
        for _ in range(answers):
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            status = int(head.split(" ", 2)[1])
            length = int(head.lower().split("content-length: ")[1].split("\r\n")[0])
            out.append((status, json.loads(await reader.readexactly(length))))
    writer.close()
    return out


async def test_a_chunked_body_is_put_together(echo_server: Path) -> None:
    data = (
        b"POST /callback?x=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: t\r\n\r\n"
    )
    assert await _exchange(echo_server, data) == [
        (200, {"path": "/callback", "query": {"x": ["1"]}, "body": "hello, world"})
    ]


async def test_requests_sent_together_are_answered_in_order(echo_server: Path) -> None:
    data = b"GET /one HTTP/1.1\r\n\r\nPOST /two HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
    assert await _exchange(echo_server, data, answers=2) == [
        (200, {"path": "/one", "query": {}, "body": ""}),
        (200, {"path": "/two", "query": {}, "body": "hi"}),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"POST /c HTTP/1.1\r\nContent-Length: 21\r\n\r\n",  # refused before any body is read
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n"
        b"5\r\n01234\r\n0\r\n\r\n",
    ],
)
async def test_a_body_over_the_limit_is_refused(echo_server: Path, data: bytes) -> None:
    assert await _exchange(echo_server, data) == [(413, {"message": "body too large"})]


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (
            b"POST /c HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
            431,
            "the request's head is too long",
        ),
        (b"POST /c HTTP/1.1\r\n Folded: x\r\n\r\n", 400, "malformed header line"),
        (
            b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            "chunk size b'zz'",
        ),
        (
            b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            400,
            "a chunk does not end where its size says",
        ),
    ],
)
async def test_a_malformed_request_is_answered_with_its_fault(
    echo_server: Path, data: bytes, status: int, message: str
) -> None:
    ((answered, body),) = await _exchange(echo_server, data)
    assert answered == status
    assert isinstance(body["message"], str) and body["message"].startswith(message)
