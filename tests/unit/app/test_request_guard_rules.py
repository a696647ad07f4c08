"""The request guard's rules one by one, on the policy itself, with every expectation written out.

Each row names one Host/Origin pair and what the guard must answer: None (let through), or the
code of its refusal. The foreign origins differ from the server in exactly one part (name, port,
scheme, brackets), so that dropping any one comparison lets a row through that must be refused.
"""

from __future__ import annotations

import json
import logging

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from app.api.request_guard import (
    GuardPolicy,
    RequestGuardMiddleware,
    _normal_origin,
    split_host,
)
from core.security_settings import SecuritySettings

pytestmark = pytest.mark.anyio


async def _endpoint(request: Request) -> Response:
    return Response()


REFUSED = "cross_origin_request"
ROUTES = [
    Route("/v1/task-runs", _endpoint, methods=["POST"]),
    Route("/v1/task-runs/{id}", _endpoint, methods=["DELETE"]),
    Route("/sign-in", _endpoint, methods=["POST"]),
]


def policy(
    *, dev: bool = True, hosts: tuple[str, ...] = (), origins: tuple[str, ...] = ()
) -> GuardPolicy:
    settings = SecuritySettings(allowed_hosts=hosts, allowed_origins=origins)
    return GuardPolicy(settings, ROUTES, dev=dev)


def scope(
    method: str = "POST",
    *,
    host: str | None = "127.0.0.1:8120",
    origin: str | None = None,
    fetch_site: str | None = None,
    content_type: str | None = "application/json",
    path: str = "/v1/task-runs",
    scheme: str = "http",
    server: tuple[str, int] | None = ("127.0.0.1", 8120),
) -> Scope:
    headers: list[tuple[bytes, bytes]] = []
    for name, value in [
        ("host", host),
        ("origin", origin),
        ("sec-fetch-site", fetch_site),
        ("content-type", content_type),
    ]:
        if value is not None:
            headers.append((name.encode(), value.encode()))
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "scheme": scheme,
        "server": server,
        "headers": headers,
        "query_string": b"",
    }


def code(guard: GuardPolicy, request: Scope) -> str | None:
    refusal = guard.refusal(request)
    return None if refusal is None else refusal.code


@pytest.mark.parametrize(
    ("host", "origin", "expected"),
    [
        # the server's own origin, under each of its names
        ("127.0.0.1:8120", "http://127.0.0.1:8120", None),
        ("localhost:8120", "http://localhost:8120", None),
        ("[::1]:8120", "http://[::1]:8120", None),
        ("LOCALHOST:8120", "HTTP://LocalHost:8120", None),
        ("127.0.0.1:8120", "http://127.0.0.1:8120/", None),
        # same port, another name: the name is compared
        ("127.0.0.1:8120", "http://evil.example:8120", REFUSED),
        ("localhost:8120", "http://127.0.0.1:8120", REFUSED),
        ("127.0.0.1:8120", "http://localhost:8120", REFUSED),
        ("[::1]:8120", "http://[::2]:8120", REFUSED),
        ("[::1]:8120", "http://127.0.0.1:8120", REFUSED),
        # same name, another port: the port is compared
        ("127.0.0.1:8120", "http://127.0.0.1:8121", REFUSED),
        ("127.0.0.1:8120", "http://127.0.0.1", REFUSED),
        ("[::1]:8120", "http://[::1]:9999", REFUSED),
        # opaque, malformed or non-web origins never match
        ("127.0.0.1:8120", "null", REFUSED),
        ("127.0.0.1:8120", "", REFUSED),
        ("127.0.0.1:8120", "file://127.0.0.1:8120", REFUSED),
        ("127.0.0.1:8120", "http://127.0.0.1:8120/page", REFUSED),
        ("127.0.0.1:8120", "http://127.0.0.1:x", REFUSED),
    ],
)
def test_origin_against_the_host_it_was_sent_to(
    host: str, origin: str, expected: str | None
) -> None:
    assert code(policy(), scope(host=host, origin=origin)) == expected


@pytest.mark.parametrize(
    ("scheme", "host", "origin", "expected"),
    [
        # a Host without a port means the scheme's default port on both sides
        ("https", "conveyor.example.com", "https://conveyor.example.com", None),
        ("https", "conveyor.example.com", "https://conveyor.example.com:443", None),
        ("http", "conveyor.example.com", "http://conveyor.example.com:80", None),
        ("https", "conveyor.example.com:443", "https://conveyor.example.com", None),
        ("http", "conveyor.example.com:80", "http://conveyor.example.com", None),
        ("http", "conveyor.example.com:8080", "http://conveyor.example.com:8080", None),
        ("https", "conveyor.example.com", "https://conveyor.example.com:8443", REFUSED),
        ("https", "conveyor.example.com:8443", "https://conveyor.example.com", REFUSED),
        ("http", "conveyor.example.com:443", "https://conveyor.example.com", None),
        ("http", "conveyor.example.com:80", "https://conveyor.example.com", REFUSED),
        ("https", "conveyor.example.com", "https://evil.example.com", REFUSED),
        ("https", "conveyor.example.com", "https://conveyor.example.com.evil", REFUSED),
    ],
)
def test_origin_with_default_ports_in_production(
    scheme: str, host: str, origin: str, expected: str | None
) -> None:
    request = scope(host=host, origin=origin, scheme=scheme, server=("10.0.0.5", 8120))
    assert code(policy(dev=False), request) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1:8120", None),
        ("localhost:8120", None),
        ("[::1]:8120", None),
        ("LocalHost:8120", None),
        # the served port and no other
        ("127.0.0.1:8121", "untrusted_host"),
        ("localhost:80", "untrusted_host"),
        ("localhost", "untrusted_host"),
        ("[::1]", "untrusted_host"),
        # other names at the served port
        ("evil.example:8120", "untrusted_host"),
        ("127.0.0.2:8120", "untrusted_host"),
        ("[::2]:8120", "untrusted_host"),
        ("localhost.evil.example:8120", "untrusted_host"),
        # malformed
        ("", "untrusted_host"),
        ("127.0.0.1:", "untrusted_host"),
        ("127.0.0.1:80a", "untrusted_host"),
        ("[::1", "untrusted_host"),
        ("[::1]8120", "untrusted_host"),
    ],
)
def test_dev_host_names_the_server(host: str, expected: str | None) -> None:
    assert code(policy(), scope("GET", host=host)) == expected


def test_a_request_without_a_host_header_is_refused_in_dev() -> None:
    assert code(policy(), scope("GET", host=None)) == "untrusted_host"


@pytest.mark.parametrize(
    ("server", "host", "expected"),
    [
        # the address the connection arrived on is one of the server's names
        (("192.168.1.7", 8120), "192.168.1.7:8120", None),
        (("192.168.1.7", 8120), "192.168.1.8:8120", "untrusted_host"),
        (("::1", 8120), "[::1]:8120", None),
        (("fe80::1", 8120), "[fe80::1]:8120", None),
        (("fe80::1", 8120), "fe80::1:8120", "untrusted_host"),
        (("fe80::1", 9000), "[fe80::1]:8120", "untrusted_host"),
        # no server address (a unix socket): the loopback names at any port
        (None, "localhost:1234", None),
        (None, "evil.example:1234", "untrusted_host"),
    ],
)
def test_dev_host_includes_the_connection_address(
    server: tuple[str, int] | None, host: str, expected: str | None
) -> None:
    assert code(policy(), scope("GET", host=host, server=server)) == expected


@pytest.mark.parametrize(
    ("scheme", "port", "host", "expected"),
    [
        ("http", 80, "localhost", None),
        ("https", 443, "localhost", None),
        ("http", 443, "localhost", "untrusted_host"),
        ("https", 80, "localhost", "untrusted_host"),
        ("https", 443, "localhost:443", None),
    ],
)
def test_a_host_without_port_means_the_schemes_default(
    scheme: str, port: int, host: str, expected: str | None
) -> None:
    request = scope("GET", host=host, scheme=scheme, server=("127.0.0.1", port))
    assert code(policy(), request) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("conveyor.internal", None),
        ("conveyor.internal:1234", None),
        ("CONVEYOR.INTERNAL:80", None),
        ("box.lan:9000", None),
        ("box.lan:9001", "untrusted_host"),
        ("box.lan", "untrusted_host"),
        ("evil.lan:9000", "untrusted_host"),
        ("internal:1234", "untrusted_host"),
    ],
)
def test_allowed_hosts(host: str, expected: str | None) -> None:
    guard = policy(dev=False, hosts=("conveyor.internal", "box.lan:9000", "bad:host:1"))
    request = scope("GET", host=host, server=("10.0.0.5", 8120))
    assert code(guard, request) == expected


def test_production_without_allowed_hosts_does_not_check_the_host() -> None:
    assert code(policy(dev=False), scope("GET", host="anything.example")) is None
    assert code(policy(dev=False), scope("GET", host="")) is None


def test_a_star_allows_any_well_formed_host() -> None:
    guard = policy(dev=True, hosts=("*",))
    assert code(guard, scope("GET", host="anything.example:1")) is None
    assert code(guard, scope("GET", host="a:b")) == "untrusted_host"


@pytest.mark.parametrize(
    ("origin", "fetch_site", "expected"),
    [
        ("https://ops.example.com", None, None),
        ("https://ops.example.com", "cross-site", None),
        ("https://ops.example.com:443", None, None),
        ("HTTPS://OPS.EXAMPLE.COM", None, None),
        ("https://ops.example.com:444", None, REFUSED),
        ("http://ops.example.com", None, REFUSED),
        ("https://ops.example.org", None, REFUSED),
        ("http://127.0.0.1:9000", None, None),
        ("http://127.0.0.1:9001", None, REFUSED),
        (None, "cross-site", "cross_site_request"),
        (None, "Cross-Site", "cross_site_request"),
        (None, "same-site", None),
        (None, "same-origin", None),
        (None, "none", None),
        ("http://127.0.0.1:8120", "cross-site", "cross_site_request"),
    ],
)
def test_allowed_origins_and_fetch_metadata(
    origin: str | None, fetch_site: str | None, expected: str | None
) -> None:
    guard = policy(origins=("https://ops.example.com/", "http://127.0.0.1:9000", "null", "x"))
    request = scope(origin=origin, fetch_site=fetch_site)
    assert code(guard, request) == expected


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_reads_are_never_refused_for_their_origin(method: str) -> None:
    request = scope(method, origin="http://evil.example:8120", fetch_site="cross-site")
    assert code(policy(), request) is None


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_every_write_method_checks_the_origin(method: str) -> None:
    request = scope(method, origin="http://evil.example:8120")
    assert code(policy(), request) == "cross_origin_request"


@pytest.mark.parametrize(
    ("method", "path", "content_type", "expected"),
    [
        ("POST", "/v1/task-runs", "application/json", None),
        ("POST", "/v1/task-runs", " Application/JSON ; charset=utf-8", None),
        ("POST", "/v1/task-runs", "text/plain", "unsupported_media_type"),
        ("POST", "/v1/task-runs", "application/jsonx", "unsupported_media_type"),
        ("POST", "/v1/task-runs", None, "unsupported_media_type"),
        ("POST", "/v1/task-runs", "multipart/form-data", "unsupported_media_type"),
        # only where a route takes the request: others keep their 404 or 405
        ("POST", "/v1/nothing", "text/plain", None),
        ("PUT", "/v1/task-runs", "text/plain", None),
        # DELETE carries no body; paths outside /v1/ have their own checks
        ("DELETE", "/v1/task-runs/trn-1", None, None),
        ("DELETE", "/v1/task-runs/trn-1", "text/plain", None),
        ("POST", "/sign-in", "application/x-www-form-urlencoded", None),
        ("POST", "/sign-in", None, None),
        ("POST", "/v1", "text/plain", None),
    ],
)
def test_writes_under_v1_need_json(
    method: str, path: str, content_type: str | None, expected: str | None
) -> None:
    request = scope(method, path=path, content_type=content_type)
    assert code(policy(), request) == expected


def test_refusal_statuses_and_messages() -> None:
    host = policy().refusal(scope("GET", host="evil.example:8120"))
    assert host is not None
    assert (host.status, host.code) == (400, "untrusted_host")
    assert host.message == (
        "Host 'evil.example:8120' is not this server's address, so the request was refused "
        "(a guard against DNS rebinding): send it to localhost or 127.0.0.1, or allow the name "
        "with CONVEYOR_SECURITY__ALLOWED_HOSTS"
    )
    origin = policy().refusal(scope(origin="http://evil.example:8120"))
    assert origin is not None
    assert (origin.status, origin.code) == (403, "cross_origin_request")
    assert "POST from Origin 'http://evil.example:8120'" in origin.message
    assert "CONVEYOR_SECURITY__ALLOWED_ORIGINS" in origin.message
    site = policy().refusal(scope(fetch_site="cross-site"))
    assert site is not None
    assert (site.status, site.code) == (403, "cross_site_request")
    assert site.message == (
        "POST refused: the browser says it was sent by another site (Sec-Fetch-Site: cross-site)"
    )
    media = policy().refusal(scope(content_type="text/plain"))
    assert media is not None
    assert (media.status, media.code) == (415, "unsupported_media_type")
    assert "POST /v1/task-runs needs 'Content-Type: application/json', got 'text/plain'" in (
        media.message
    )


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("example.com", ("example.com", None)),
        (" Example.COM:81 ", ("example.com", 81)),
        ("[::1]:0", ("[::1]", 0)),
        ("[fe80::1]", ("[fe80::1]", None)),
        ("x:", None),
        (":80", None),
        ("[::1]:", None),
        ("[::1]:-1", None),
        ("[::1]]:80", None),
        ("[::1]]", None),
    ],
)
def test_split_host_edges(value: str, parsed: tuple[str, int | None] | None) -> None:
    assert split_host(value) == parsed


@pytest.mark.parametrize(
    ("origin", "normal"),
    [
        ("http://a.example", "http://a.example"),
        ("http://a.example:80", "http://a.example"),
        ("https://a.example:443/", "https://a.example"),
        ("https://a.example:80", "https://a.example:80"),
        ("http://a.example:443", "http://a.example:443"),
        ("ws://a.example:80", "ws://a.example"),
        ("wss://a.example:443", "wss://a.example"),
        (" HTTP://A.Example:8080 ", "http://a.example:8080"),
        ("http://[::1]:8120", "http://[::1]:8120"),
        ("null", None),
        ("ftp://a.example", None),
        ("http://", None),
        ("http://a.example/x", None),
        ("http://a.example:x", None),
    ],
)
def test_normal_origin(origin: str, normal: str | None) -> None:
    assert _normal_origin(origin) == normal


@pytest.mark.parametrize(
    ("server", "host", "expected"),
    [
        (("MyBox", 8120), "mybox:8120", None),
        (("MyBox", 8120), "MYBOX:8120", None),
        (("mybox", 8120), "otherbox:8120", "untrusted_host"),
    ],
)
def test_a_named_server_address_is_compared_in_lower_case(
    server: tuple[str, int], host: str, expected: str | None
) -> None:
    assert code(policy(), scope("GET", host=host, server=server)) == expected


@pytest.mark.parametrize(("port", "expected"), [(80, None), (81, "untrusted_host")])
def test_a_scope_without_a_scheme_is_http(port: int, expected: str | None) -> None:
    request = scope("GET", host="localhost", server=("127.0.0.1", port))
    del request["scheme"]
    assert code(policy(), request) == expected


@pytest.mark.parametrize("origin", ["http://xxxx", "null", "http://localhost"])
def test_without_a_host_header_no_origin_is_the_servers_own(origin: str) -> None:
    request = scope(host=None, origin=origin, server=("10.0.0.5", 8120))
    assert code(policy(dev=False), request) == "cross_origin_request"


async def test_the_middleware_answers_the_refusal_and_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reached: list[Scope] = []
    channels: list[tuple[Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope)
        channels.append((receive, send))

    async def receive() -> Message:
        raise AssertionError("the guard never reads the body")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = RequestGuardMiddleware(app, policy())
    with caplog.at_level(logging.WARNING, logger="conveyor.api.guard"):
        await middleware(scope(origin="http://evil.example:8120"), receive, send)
    assert reached == []
    assert sent[0]["status"] == 403
    body = json.loads(sent[1]["body"])
    assert body["code"] == "cross_origin_request"
    assert body["message"].startswith("POST from Origin 'http://evil.example:8120' refused")
    [record] = caplog.records
    assert record.getMessage() == (
        "refused POST /v1/task-runs: POST from Origin 'http://evil.example:8120' refused: only "
        "this server's own pages may change state (allow another origin with "
        "CONVEYOR_SECURITY__ALLOWED_ORIGINS)"
    )
    allowed = scope()
    await middleware(allowed, receive, send)
    assert reached == [allowed]
    lifespan: Scope = {"type": "lifespan"}
    await middleware(lifespan, receive, send)
    assert reached == [allowed, lifespan]
    assert channels == [(receive, send), (receive, send)]  # the app gets the request's own
