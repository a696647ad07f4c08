"""Fork requests sent at once to a zygote that reads slowly arrive whole, each with its files."""

from __future__ import annotations

import array
import asyncio
import json
import os
import socket

import pytest

from scheduler.executors.zygote import RequestSender

pytestmark = pytest.mark.anyio

REQUESTS = 40
PADDING = 20_000  # bytes per request: many times what the socket buffer holds at once


def _read_all(sock: socket.socket, count: int) -> tuple[list[dict[str, object]], list[int]]:
    """The zygote's side, blocking, in a thread: `count` lines and every file passed."""
    buffer = b""
    fds: list[int] = []
    lines: list[dict[str, object]] = []
    while len(lines) < count:
        data, ancillary, _flags, _address = sock.recvmsg(4096, socket.CMSG_SPACE(4 * 8))
        assert data, "the sender closed before every request arrived"
        for level, kind, payload in ancillary:
            assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
            passed = array.array("i")
            passed.frombytes(payload[: len(payload) - len(payload) % passed.itemsize])
            fds.extend(passed)
        buffer += data
        *complete, buffer = buffer.split(b"\n")
        lines.extend(json.loads(line) for line in complete)
    return lines, fds


async def test_concurrent_requests_are_never_interleaved_and_keep_their_files() -> None:
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ours.setblocking(False)
    sender = RequestSender(ours)
    files = [os.open(os.devnull, os.O_RDONLY) for _ in range(REQUESTS)]
    try:
        reading = asyncio.create_task(asyncio.to_thread(_read_all, theirs, REQUESTS))

        async def send(n: int) -> None:
            line = json.dumps({"fork": n, "padding": "x" * PADDING}).encode() + b"\n"
            await sender.send(line, [files[n]])

        async with asyncio.timeout(30):
            await asyncio.gather(*(send(n) for n in range(REQUESTS)))
            lines, passed = await reading
        assert sorted(int(str(line["fork"])) for line in lines) == list(range(REQUESTS))
        assert all(line["padding"] == "x" * PADDING for line in lines)
        assert len(passed) == REQUESTS, "each request's file came with it"
        for fd in passed:
            os.close(fd)
    finally:
        for fd in files:
            os.close(fd)
        sender.close()
        theirs.close()


async def test_a_closed_socket_is_an_error_not_a_wait() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    sender = RequestSender(ours)
    sender.close()
    theirs.close()
    with pytest.raises(ConnectionResetError, match="socket is closed"):
        await sender.send(b"{}\n", [])
