"""Requests on this thread over one kept-alive connection to the instance's socket.

A sync task's run asks for its input and sends its result: two requests, one connection. The
connection is dropped when idle for `IDLE_SECONDS` (under the platform's own idle limit) and in a
process forked after it was opened; a request on a reused connection that the platform had closed
is sent again on a new one. Written on the socket module alone: a worker that runs one sync task
imports neither ``http.client`` (with ``email``) nor ``asyncio``.
"""

from __future__ import annotations

import socket
from os import getpid
from time import monotonic

IDLE_SECONDS = 20.0  # the platform closes a connection idle for 60 s (scheduler/uds_http.py)
_READ_BYTES = 64 * 1024
MAX_HEAD_BYTES = 64 * 1024


class Stale(Exception):
    """A reused connection was closed by the platform before it answered."""


def framing(head: bytes) -> tuple[int | None, bool]:
    """(Content-Length, whether the connection may carry another request) of a response head:
    its status line and headers, without the blank line."""
    length: int | None = None
    keep = head.startswith(b"HTTP/1.1 ")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"content-length" and value.isdigit():
            length = int(value)
        elif name == b"connection" and value.lower() == b"close":
            keep = False
    return length, keep and length is not None


class KeptSocket:
    """One connection to a socket path, kept for the next request of this process."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._sock: socket.socket | None = None
        self._pid = 0
        self._idle_since = 0.0

    def exchange(self, request: bytes, timeout: float) -> bytes:
        """Sends `request` (which must not ask to close) and returns the whole answer: its head,
        a blank line and its body. OSError when the platform cannot be reached."""
        reused = self._take()
        if reused is not None:
            try:
                return self._exchange(reused, request, timeout)
            except Stale:
                pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        try:
            return self._exchange(sock, request, timeout)
        except Stale as exc:
            raise ConnectionResetError(
                "the platform closed the connection before answering"
            ) from exc

    def _exchange(self, sock: socket.socket, request: bytes, timeout: float) -> bytes:
        done = False
        try:
            sock.settimeout(timeout)
            try:
                sock.sendall(request)
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise Stale from exc
            head, body, keep = _read_answer(sock)
            done = True
        finally:
            if not done:
                sock.close()
        if keep:
            self._sock, self._pid, self._idle_since = sock, getpid(), monotonic()
        else:
            sock.close()
        return head + b"\r\n\r\n" + body

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _take(self) -> socket.socket | None:
        sock, self._sock = self._sock, None
        if sock is None:
            return None
        # a forked child closes only its own descriptor: the parent's connection stays open
        if self._pid != getpid() or monotonic() - self._idle_since >= IDLE_SECONDS:
            sock.close()
            return None
        return sock


def _read_answer(sock: socket.socket) -> tuple[bytes, bytes, bool]:
    """(head, body, keep) of one response; Stale when the connection ends before its first
    byte, ConnectionResetError when it ends within it."""
    buffer = bytearray()
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > MAX_HEAD_BYTES:
            raise ConnectionResetError("the platform's answer has a head too large")
        try:
            chunk = sock.recv(_READ_BYTES)
        except ConnectionResetError as exc:
            if buffer:
                raise
            raise Stale from exc
        if not chunk:
            if buffer:
                raise ConnectionResetError("the platform's answer ended before its headers did")
            raise Stale
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    length, keep = framing(head)
    body = bytearray(rest)
    while length is None or len(body) < length:
        chunk = sock.recv(_READ_BYTES)
        if not chunk:
            if length is None:
                break  # no length: the body runs to the end of the connection
            raise ConnectionResetError("the platform's answer ended before its body did")
        body += chunk
    return head, bytes(body if length is None else body[:length]), keep
