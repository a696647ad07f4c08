"""HTTP/1.1 request framing for the instance socket: strict, and only what its clients send.

The clients are the SDKs (Conveyor's, Render's Python and TypeScript ones) and `curl`: a request
line, headers, and a body framed by ``Content-Length`` or ``Transfer-Encoding: chunked``. What
RFC 9112 forbids, or what could frame a body two ways, is refused with a 400 naming the fault,
never guessed at: no header folding, no bare CR or LF (nor any control character but HTAB) in
the head, no Content-Length beside chunked, no two lengths that differ, nothing but HTTP/1.0
and 1.1.

It replaces a general-purpose state machine (h11) that cost more per request than the agent's
handling of it; the server's answers are whole responses written at once.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from http import HTTPStatus

MAX_HEAD = 64 * 1024  # a request line and headers longer than this are refused

_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # what no line of a head holds (HTAB may)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_DIGITS = re.compile(rb"[0-9]{1,18}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_VERSIONS = {b"HTTP/1.1": True, b"HTTP/1.0": False}
_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


class BadRequest(Exception):
    """The bytes are not a request this server takes; answered with `status`, then closed."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str
    user_agent: str
    keep_alive: bool  # HTTP/1.1 without ``Connection: close``
    content_length: int | None  # None: chunked


def parse_head(data: bytes) -> RequestHead:
    """The request line and headers, `data` ending with the blank line."""
    lines = data[:-4].split(b"\r\n")
    if any(_CONTROL.search(line) for line in lines):
        raise BadRequest("a line of the request holds a control character (a bare CR or LF?)")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _TARGET.fullmatch(parts[1]):
        raise BadRequest("malformed request line")
    method, target, version = parts
    if version not in _VERSIONS:
        raise BadRequest("only HTTP/1.1 and HTTP/1.0 are spoken here", 505)
    user_agent = ""
    close = not _VERSIONS[version]
    lengths: set[bytes] = set()
    chunked = False
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise BadRequest(f"malformed header line {line[:40]!r}")
        value = value.strip(b" \t")
        name = name.lower()
        if name == b"content-length":
            lengths.update(v.strip(b" \t") for v in value.split(b","))
        elif name == b"transfer-encoding":
            if value.lower() != b"chunked" or chunked:
                raise BadRequest(f"transfer-encoding {value.decode(errors='replace')!r}", 501)
            chunked = True
        elif name == b"connection":
            close = close or b"close" in (t.strip(b" \t").lower() for t in value.split(b","))
        elif name == b"user-agent":
            user_agent = value.decode(errors="replace")
    return RequestHead(
        method.decode(),
        target.decode(),
        user_agent,
        keep_alive=not close,
        content_length=_content_length(lengths, chunked),
    )


def _content_length(lengths: set[bytes], chunked: bool) -> int | None:
    if chunked:
        if lengths:
            raise BadRequest("both content-length and chunked: the body's end is ambiguous")
        return None
    if not lengths:
        return 0
    if len(lengths) > 1:
        raise BadRequest("content-length given twice, differently")
    (length,) = lengths
    if not _DIGITS.fullmatch(length):
        raise BadRequest(f"content-length {length.decode(errors='replace')!r}")
    return int(length)


class TooLarge(Exception):
    """The body is over the server's limit (answered 413, then closed)."""


async def read_body(reader: asyncio.StreamReader, head: RequestHead, max_body: int) -> bytes:
    if head.content_length is not None:
        if head.content_length > max_body:
            raise TooLarge
        return await reader.readexactly(head.content_length) if head.content_length else b""
    body = bytearray()
    while True:
        size_line = (await reader.readuntil(b"\r\n"))[:-2]
        size = size_line.split(b";", 1)[0].strip(b" \t")
        if not _HEX.fullmatch(size):
            raise BadRequest(f"chunk size {size_line[:20]!r}")
        length = int(size, 16)
        if length == 0:
            break
        if len(body) + length > max_body:
            raise TooLarge
        body += await reader.readexactly(length)
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest("a chunk does not end where its size says")
    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers: read, not used
        pass
    return bytes(body)


def response_bytes(status: int, body: bytes, *, close: bool) -> bytes:
    """A whole JSON response: status line, headers and body, written at once."""
    reason = _REASONS.get(status, b"")
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % (
        status,
        reason,
        len(body),
    )
    if close:
        head += b"connection: close\r\n"
    return head + b"\r\n" + body
