"""Refuses what a web page could make a browser send: foreign Host, foreign Origin, non-JSON writes.

A page the developer visits can aim `fetch(..., {mode: "no-cors"})` or a plain HTML form at
the server without reading the answer. Such requests can only carry `text/plain`, form or
multipart bodies, they name the page in `Origin` (and `Sec-Fetch-Site: cross-site`), and through
DNS rebinding they reach loopback under the attacker's host name. So:

- Host: in `conveyor dev` (or whenever `allowed_hosts` is set) the Host header must name the
  server itself — `localhost`, `127.0.0.1`, `[::1]` or the address the connection arrived on, at
  the served port — or an allow-listed name. Every route, reads included.
- Origin: a state-changing request (not GET/HEAD/OPTIONS) that carries an Origin must come from
  this server's own origin or an allow-listed one; `Sec-Fetch-Site: cross-site` likewise.
- Content-Type: POST, PUT and PATCH under `/v1/` must send `application/json`, which no page
  can send cross-origin without a CORS preflight (never granted here).

The webhook (signature) and the dashboard (CSRF tokens) keep their own checks on top.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.responses import error_response
from core.security_settings import SecuritySettings

logger = logging.getLogger("conveyor.api.guard")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_JSON_METHODS = frozenset({"POST", "PUT", "PATCH"})
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_HOST_SETTING = "CONVEYOR_SECURITY__ALLOWED_HOSTS"
_ORIGIN_SETTING = "CONVEYOR_SECURITY__ALLOWED_ORIGINS"

HostPort = tuple[str, int | None]


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


def split_host(value: str) -> HostPort | None:
    """`("name", port)` from `name[:port]` or `[v6][:port]`, lower-cased; None when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name, rest = value[: end + 1], value[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    else:
        name, colon, port_text_or_empty = value.partition(":")
        port_text = port_text_or_empty if colon else None
    if not name or (port_text is not None and not port_text.isdigit()):
        return None
    return name, int(port_text) if port_text is not None else None


def _bracketed(address: str) -> str:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address.lower()
    return f"[{parsed}]" if parsed.version == 6 else str(parsed)


def _normal_origin(origin: str) -> str | None:
    """`scheme://host[:port]` with the default port left out; None for `null` or garbage."""
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc or parts.path not in ("", "/"):
        return None
    target = split_host(parts.netloc)
    if target is None:
        return None
    name, port = target
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{name}"
    return f"{parts.scheme}://{name}:{port}"


class GuardPolicy:
    """What the guard accepts, built once from `SecuritySettings`."""

    def __init__(
        self, settings: SecuritySettings, routes: Sequence[BaseRoute], *, dev: bool
    ) -> None:
        self.routes = routes
        self.check_host = dev or bool(settings.allowed_hosts)
        self.allowed_hosts = tuple(h for h in map(split_host, settings.allowed_hosts) if h)
        self.any_host = "*" in settings.allowed_hosts
        self.allowed_origins = frozenset(
            o for o in map(_normal_origin, settings.allowed_origins) if o
        )

    def refusal(self, scope: Scope) -> Refusal | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.check_host and not self._host_allowed(host, scope):
            return Refusal(
                400,
                "untrusted_host",
                f"Host {host!r} is not this server's address, so the request was refused "
                "(a guard against DNS rebinding): send it to localhost or 127.0.0.1, or allow "
                f"the name with {_HOST_SETTING}",
            )
        method = scope["method"]
        if method in SAFE_METHODS:
            return None
        return self._cross_site(headers, host, scope) or self._content_type(headers, scope)

    def _reaches_an_endpoint(self, scope: Scope) -> bool:
        """A request no route takes changes nothing: it keeps its 404 or 405 (with `Allow`)."""
        return any(route.matches(scope)[0] is Match.FULL for route in self.routes)

    def _host_allowed(self, host: str, scope: Scope) -> bool:
        target = split_host(host)
        if target is None:
            return False
        if self.any_host:
            return True
        name, port = target
        effective = port if port is not None else _DEFAULT_PORTS.get(scope.get("scheme", ""), 80)
        server = scope.get("server")
        own_names = set(_LOOPBACK_NAMES)
        served_port: int | None = None
        if server:
            own_names.add(_bracketed(str(server[0])))
            served_port = server[1]
        if name in own_names and (served_port is None or effective == served_port):
            return True
        return any(
            name == allowed and (allowed_port is None or effective == allowed_port)
            for allowed, allowed_port in self.allowed_hosts
        )

    def _cross_site(self, headers: Headers, host: str, scope: Scope) -> Refusal | None:
        origin = headers.get("origin")
        normal = _normal_origin(origin) if origin is not None else None
        allowed = normal is not None and normal in self.allowed_origins
        if origin is not None and not allowed and not self._is_own(normal, host):
            return Refusal(
                403,
                "cross_origin_request",
                f"{scope['method']} from Origin {origin!r} refused: only this server's own pages "
                f"may change state (allow another origin with {_ORIGIN_SETTING})",
            )
        if headers.get("sec-fetch-site", "").lower() == "cross-site" and not allowed:
            return Refusal(
                403,
                "cross_site_request",
                f"{scope['method']} refused: the browser says it was sent by another site "
                "(Sec-Fetch-Site: cross-site)",
            )
        return None

    @staticmethod
    def _is_own(origin: str | None, host: str) -> bool:
        """The Origin names the host and port the request was sent to."""
        target = split_host(host)
        if origin is None or target is None:
            return False
        scheme, _, netloc = origin.partition("://")
        origin_name, origin_port = split_host(netloc) or ("", None)
        name, port = target
        if origin_name != name:
            return False
        if port is None:  # the scheme's default port on both sides
            return origin_port is None
        return port == (origin_port or _DEFAULT_PORTS[scheme])

    def _content_type(self, headers: Headers, scope: Scope) -> Refusal | None:
        path: str = scope["path"]
        if scope["method"] not in _JSON_METHODS or not path.startswith("/v1/"):
            return None
        if not self._reaches_an_endpoint(scope):
            return None
        sent = headers.get("content-type")
        media_type = (sent or "").partition(";")[0].strip().lower()
        if media_type == "application/json":
            return None
        return Refusal(
            415,
            "unsupported_media_type",
            f"{scope['method']} {path} needs 'Content-Type: application/json', got "
            f"{sent!r}; other types are refused so that no web page can send this request",
        )


class RequestGuardMiddleware:
    def __init__(self, app: ASGIApp, policy: GuardPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.policy.refusal(scope)
            if refusal is not None:
                logger.warning("refused %s %s: %s", scope["method"], scope["path"], refusal.message)
                response = error_response(refusal.status, refusal.code, refusal.message)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
