"""The instance socket's request framing: each rule of what is taken and what is refused."""

from __future__ import annotations

import asyncio
import json
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
    return "\r\n".join((request_line, *lines)).encode("latin-1") + b"\r\n\r\n"


def test_a_request_from_an_sdk_is_read_whole() -> None:
    head = parse_head(
        _head(
            "Host: localhost:8120",
            "User-Agent: X-Client/0.8.0 (python)",
            "Content-Type: application/json",
            "Content-Length: 17",
            request_line="POST /callback?attempt=a1 HTTP/1.1",
        )
    )
    assert head == RequestHead(
        method="POST",
        target="/callback?attempt=a1",
        user_agent="X-Client/0.8.0 (python)",
        keep_alive=True,
        content_length=17,
    )


def test_a_request_without_a_user_agent_names_none() -> None:
    assert parse_head(_head("Host: x")).user_agent == ""


def test_a_user_agent_that_is_not_utf8_is_read_with_replacements() -> None:
    assert parse_head(_head("User-Agent: caf\xe9")).user_agent == "caf\ufffd"


@pytest.mark.parametrize(
    ("request_line", "connection", "keep_alive"),
    [
        ("GET /input HTTP/1.1", None, True),
        ("GET /input HTTP/1.1", "Connection: close", False),
        ("GET /input HTTP/1.1", "Connection: CLOSE", False),
        ("GET /input HTTP/1.1", "Connection: keep-alive, close", False),
        ("GET /input HTTP/1.1", "Connection: keep-alive,\tclose", False),
        ("GET /input HTTP/1.1", "Connection: keep-alive,close", False),
        ("GET /input HTTP/1.1", "Connection: keep-alive", True),
        ("GET /input HTTP/1.1", "Connection: XCLOSE", True),
        ("GET /input HTTP/1.1", "Connection: closed", True),
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
        (("Content-Length: \t12\t",), 12),
        (("Content-Length: 12, 12",), 12),
        (("Content-Length: 12,\t12",), 12),
        (("Content-Length: 12", "content-length: 12"), 12),
        (("Transfer-Encoding: chunked",), None),
        (("Transfer-Encoding: Chunked",), None),
    ],
)
def test_the_body_is_framed_by_its_length_or_by_chunks(
    lines: tuple[str, ...], length: int | None
) -> None:
    assert parse_head(_head("Host: x", *lines)).content_length == length


_LONG = "x" * 50
_CONTROL = "a line of the request holds a control character (a bare CR or LF?)"


@pytest.mark.parametrize(
    ("lines", "status", "message"),
    [
        (("Content-Length: 1, 2",), 400, "content-length given twice, differently"),
        (
            ("Content-Length: 1", "Content-Length: 2"),
            400,
            "content-length given twice, differently",
        ),
        (("Content-Length: -1",), 400, "content-length '-1'"),
        (("Content-Length: +5",), 400, "content-length '+5'"),
        (("Content-Length: 12X",), 400, "content-length '12X'"),
        (("Content-Length: 0x10",), 400, "content-length '0x10'"),
        (("Content-Length: ",), 400, "content-length ''"),
        (("Content-Length: \xff",), 400, "content-length '\ufffd'"),
        (
            ("Content-Length: 1", "Transfer-Encoding: chunked"),
            400,
            "both content-length and chunked: the body's end is ambiguous",
        ),
        (("Transfer-Encoding: gzip, chunked",), 501, "transfer-encoding 'gzip, chunked'"),
        (("Transfer-Encoding: Xchunked",), 501, "transfer-encoding 'Xchunked'"),
        (("Transfer-Encoding: \xff",), 501, "transfer-encoding '\ufffd'"),
        (
            ("Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),
            501,
            "transfer-encoding 'chunked'",
        ),
        ((" folded: header",), 400, "malformed header line b' folded: header'"),
        (("Host : x",), 400, "malformed header line b'Host : x'"),
        (("no colon",), 400, "malformed header line b'no colon'"),
        ((": empty name",), 400, "malformed header line b': empty name'"),
        ((f"{_LONG} {_LONG}",), 400, f"malformed header line b'{'x' * 40}'"),
        (
            ("Host: x\ny: z",),
            400,
            _CONTROL,
        ),
        (
            ("Host: x\rstill",),
            400,
            _CONTROL,
        ),
        (("Host: a\0b",), 400, _CONTROL),
        (("Connection: close\x0b",), 400, _CONTROL),
        (("Content-Length: 1\x0c",), 400, _CONTROL),
        (("X: \x7f",), 400, _CONTROL),
    ],
)
def test_a_head_that_frames_badly_is_refused(
    lines: tuple[str, ...], status: int, message: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_head(_head("Host: x", *lines))
    assert (refused.value.status, str(refused.value)) == (status, message)


_MALFORMED = (400, "malformed request line")
_VERSION = (505, "only HTTP/1.1 and HTTP/1.0 are spoken here")


@pytest.mark.parametrize(
    ("request_line", "refusal"),
    [
        ("POST /callback HTTP/2.0", _VERSION),
        ("POST /callback HTTP/1.2", _VERSION),
        ("POST /callback http/1.1", _VERSION),
        ("POST  /callback HTTP/1.1", _MALFORMED),
        ("POST /callback", _MALFORMED),
        ("POST /a b HTTP/1.1", _MALFORMED),
        ("PO(ST /callback HTTP/1.1", _MALFORMED),
        ("POST /caf\xe9 HTTP/1.1", _MALFORMED),
    ],
)
def test_a_request_line_other_than_method_target_version_is_refused(
    request_line: str, refusal: tuple[int, str]
) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_head(_head("Host: x", request_line=request_line))
    assert (refused.value.status, str(refused.value)) == refusal


def test_a_response_is_written_whole() -> None:
    assert response_bytes(200, b'{"a":1}', close=False) == (
        b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{"a":1}'
    )
    assert response_bytes(413, b"", close=True) == (
        b"HTTP/1.1 413 Request Entity Too Large\r\ncontent-type: application/json\r\n"
        b"content-length: 0\r\nconnection: close\r\n\r\n"
    )
    assert response_bytes(599, b"", close=False) == (
        b"HTTP/1.1 599 \r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"
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
        b"5\r\nhello\r\n7;a=1;b=2\r\n, world\r\n0\r\nTrailer: t\r\nOther: u\r\n\r\n"
        b"GET /next HTTP/1.1\r\n\r\n"  # after the trailers, the next request
    )
    assert await _exchange(echo_server, data, answers=2) == [
        (200, {"path": "/callback", "query": {"x": ["1"]}, "body": "hello, world"}),
        (200, {"path": "/next", "query": {}, "body": ""}),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"POST /c HTTP/1.1\r\nContent-Length: 20\r\n\r\n" + b"a" * 20,
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"10\r\n" + b"a" * 16 + b"\r\n4\r\naaaa\r\n0\r\n\r\n",
    ],
)
async def test_a_body_at_the_limit_is_taken(echo_server: Path, data: bytes) -> None:
    assert await _exchange(echo_server, data) == [
        (200, {"path": "/c", "query": {}, "body": "a" * 20})
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
        (b"POST /c HTTP/1.1\r\n Folded: x\r\n\r\n", 400, "malformed header line b' Folded: x'"),
        (
            b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            "chunk size b'zz'",
        ),
        (
            b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\x0c\r\n",
            400,
            "chunk size b'5\\x0c'",
        ),
        (
            b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nX5\r\n",
            400,
            "chunk size b'X5'",
        ),
        (
            b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"g" * 30 + b"\r\n",
            400,
            f"chunk size b'{'g' * 20}'",
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
    assert await _exchange(echo_server, data) == [(status, {"message": message})]
