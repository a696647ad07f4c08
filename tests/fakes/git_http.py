"""Git's smart HTTP protocol on loopback, served by real git (`git http-backend`, as CGI).

GitHub serves repositories over the same protocol, so the fake GitHub mounts this for its
repositories, and `GitHost` serves another host's (a GitLab, an attacker's server). Both write
every credential they receive into one `TokenLedger`: which host got which token.
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.integration.dev_server import free_port


@dataclass
class TokenLedger:
    """(host the request was sent to, token it carried), for every request that carried one."""

    received: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, request: Request) -> str | None:
        token = basic_token(request.headers.get("authorization", ""))
        if token is not None:
            with self._lock:
                self.received.append((request.headers.get("host", ""), token))
        return token

    def hosts_of(self, token: str) -> set[str]:
        with self._lock:
            return {host for host, seen in self.received if seen == token}


def basic_token(header: str) -> str | None:
    """The password of `Authorization: Basic base64(user:password)`, or of a bearer token."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token") and value:
        return value.strip()
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except ValueError:
        return "<undecodable>"
    return decoded.partition(":")[2]


async def http_backend(root: Path, path_info: str, request: Request) -> Response:
    """One request of git's smart HTTP protocol, answered by `git http-backend`."""
    body = await request.body()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": path_info,
        "QUERY_STRING": request.url.query,
        "REQUEST_METHOD": request.method,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
    }
    if "content-encoding" in request.headers:
        env["HTTP_CONTENT_ENCODING"] = request.headers["content-encoding"]
    if "git-protocol" in request.headers:
        env["GIT_PROTOCOL"] = request.headers["git-protocol"]
    process = await asyncio.create_subprocess_exec(
        "git",
        "http-backend",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(body)
    separator = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
    head, _, payload = out.partition(separator)
    status, headers = 200, {}
    for line in head.decode(errors="replace").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers[name.strip()] = value.strip()
    if process.returncode and not head:
        return Response(err, 500)
    return Response(payload, status, headers)


class GitHost:
    """Another git host: serves the bare repositories under `root` to anyone, and records the
    credentials it receives (none should be the GitHub installation's)."""

    def __init__(self, root: Path, ledger: TokenLedger) -> None:
        self.root = root
        self.ledger = ledger
        self.url = ""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._serve, methods=["GET", "POST"])])

    async def _serve(self, request: Request) -> Response:
        self.ledger.record(request)
        return await http_backend(self.root, "/" + request.path_params["path"], request)


@contextmanager
def serve_app(app: ASGIApp, host: str = "127.0.0.1") -> Iterator[int]:
    """`app` served by uvicorn in a thread on a free loopback port, until the block ends."""
    port = free_port()
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while not server.started:
            if datetime.now(UTC) > deadline or not thread.is_alive():
                raise RuntimeError("the server did not start")
            threading.Event().wait(0.02)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def git_host(root: Path, ledger: TokenLedger) -> Iterator[GitHost]:
    """A `GitHost` on `http://localhost:<port>` (a host name other than GitHub's 127.0.0.1)."""
    host = GitHost(root, ledger)
    with serve_app(host.app()) as port:
        host.url = f"http://localhost:{port}"
        yield host
