"""Which repository URLs the server fetches from: the configured GitHub and allowed git hosts.

A workflow's repository is fetched by the server, from inside its network, so a tenant must not
be able to point it anywhere. The rules, in the order they are checked (the first that fails is
the one named in the 400):

1. `file-repository`: `file://` reads the server's own disk (other workspaces' checkouts): only
   under `conveyor dev`, or with `CONVEYOR_BUILDS__ALLOW_FILE_REPOS=true`.
2. `scheme`: only `https://` and SSH (`ssh://`, `git@host:owner/name`); not `http://`, `git://`.
3. `ip-address`: the host is a name, never an IP literal (loopback, link-local, private or any).
4. `git-host`: the host is the configured GitHub's (`CONVEYOR_GITHUB__WEB_URL`) or one listed in
   `CONVEYOR_BUILDS__GIT_HOSTS`.
5. `resolves-to`: the name resolves to public addresses only; checked when a workflow is saved
   and again right before each fetch (a name may change what it points at).

A repository under the configured GitHub URL itself is the operator's choice and passes as
configured (a GitHub Enterprise on an internal address, or plain HTTP on loopback in tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.errors import InvalidRequest
from core.settings import Settings

Resolver = Callable[[str], Awaitable[Sequence[str]]]

FILE_SETTING = "CONVEYOR_BUILDS__ALLOW_FILE_REPOS"
HOSTS_SETTING = "CONVEYOR_BUILDS__GIT_HOSTS"


class RepositoryRefused(InvalidRequest):
    """A repository URL the policy refuses; `rule` names the rule (module docstring)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{message} [rule: {rule}]")
        self.rule = rule


@dataclass(frozen=True)
class RepoLocation:
    scheme: str  # "https", "ssh", "http", "file"…
    host: str  # lower-case, no port, no brackets; "" for file://
    port: int | None


def locate(url: str) -> RepoLocation:
    """Scheme, host and port of a git URL (scp-like `git@host:path` is SSH)."""
    if url.startswith("git@") and "://" not in url:
        host = url[len("git@") :].partition(":")[0]
        return RepoLocation("ssh", host.lower(), None)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RepositoryRefused("scheme", f"repo {url!r} is not a URL") from None
    return RepoLocation(parts.scheme.lower(), (parts.hostname or "").lower(), port)


def address_kind(address: str) -> str | None:
    """What makes `address` non-public ("loopback", "private"…), or None for a public one."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return kind
    return None if ip.is_global else "non-public"


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


async def resolve(host: str) -> list[str]:
    """Every address `host` resolves to (empty when it does not resolve)."""
    loop = asyncio.get_running_loop()
    try:
        answers = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(answer[4][0]) for answer in answers})


@dataclass(frozen=True)
class RepoPolicy:
    github_url: str  # the configured GitHub's web URL, e.g. https://github.com
    git_hosts: tuple[str, ...] = ()  # more hosts allowed besides GitHub's
    allow_file: bool = False

    def _trusted(self, url: str) -> bool:
        """Under the configured GitHub URL itself: passes as the operator configured it."""
        base = self.github_url.rstrip("/") + "/"
        return url.lower().startswith(base.lower())

    @property
    def github_host(self) -> str:
        return locate(self.github_url).host

    def allowed_hosts(self) -> tuple[str, ...]:
        hosts = [self.github_host, *(h.strip().lower() for h in self.git_hosts)]
        return tuple(dict.fromkeys(h for h in hosts if h))

    def check_static(self, url: str) -> RepoLocation | None:
        """Rules 1 to 4; the location still to resolve (rule 5), None when nothing is left."""
        if self._trusted(url):
            return None
        where = locate(url)
        if where.scheme == "file":
            if self.allow_file:
                return None
            raise RepositoryRefused(
                "file-repository",
                f"repo {url!r}: file:// repositories are read from the server's own disk; "
                f"they are only for `conveyor dev` (or {FILE_SETTING}=true)",
            )
        if where.scheme not in ("https", "ssh"):
            raise RepositoryRefused(
                "scheme",
                f"repo {url!r}: only https:// and SSH URLs (ssh://, git@host:owner/name) are "
                f"accepted, not {where.scheme}://",
            )
        if _is_ip_literal(where.host):
            kind = address_kind(where.host) or "public"
            raise RepositoryRefused(
                "ip-address",
                f"repo {url!r}: the host must be a name, not an IP address "
                f"({where.host} is {_a(kind)} address)",
            )
        allowed = self.allowed_hosts()
        if where.host not in allowed:
            raise RepositoryRefused(
                "git-host",
                f"repo {url!r}: {where.host or 'no host'} is not an allowed git host "
                f"(allowed: {', '.join(allowed)}; {HOSTS_SETTING} adds more)",
            )
        return where

    async def check(self, url: str, resolver: Resolver = resolve) -> tuple[str, ...]:
        """Every rule; RepositoryRefused (a 400) naming the first that fails.

        Returns the addresses the host was checked at (git is pinned to them, so a name cannot
        point elsewhere between the check and the fetch); empty when there is nothing to pin. A
        name that does not resolve passes here (the fetch fails on it).
        """
        where = self.check_static(url)
        if where is None or where.host == self.github_host:
            return ()
        addresses = tuple(await resolver(where.host))
        for address in addresses:
            kind = address_kind(address)
            if kind is not None:
                raise RepositoryRefused(
                    "resolves-to",
                    f"repo {url!r}: {where.host} resolves to {address}, {_a(kind)} address",
                )
        return addresses

    def github_full_name(self, url: str) -> str | None:
        """`owner/name` (lower-case) of a repository on the configured GitHub, else None.

        On GitHub's web URL (`<web_url>/owner/name[.git]`) or SSH to its host
        (`git@host:owner/name[.git]`, `ssh://git@host/owner/name[.git]`); exactly two parts.
        """
        if self._trusted(url):
            path = url[len(self.github_url.rstrip("/")) + 1 :]
        elif self.on_github(url):
            path = url.partition(":")[2] if url.startswith("git@") else urlsplit(url).path
        else:
            return None
        parts = [p for p in path.split("/") if p]
        if len(parts) != 2 or not parts[1].removesuffix(".git"):
            return None
        return f"{parts[0]}/{parts[1].removesuffix('.git')}".lower()

    def on_github(self, url: str) -> bool:
        """Whether `url` is on the configured GitHub (its URL, or SSH to its host)."""
        if self._trusted(url):
            return True
        try:
            where = locate(url)
        except RepositoryRefused:
            return False
        return where.host == self.github_host and where.scheme in ("https", "ssh")


def repo_policy(settings: Settings) -> RepoPolicy:
    return RepoPolicy(
        github_url=settings.github.web_url,
        git_hosts=settings.builds.git_hosts,
        allow_file=settings.builds.allow_file_repos,
    )
