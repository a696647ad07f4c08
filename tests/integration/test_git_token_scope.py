"""Real git over HTTP on loopback: the installation token reaches GitHub's host and no other.

The fake GitHub (127.0.0.1) and another git host (localhost, another port) serve the same bare
repository with real `git http-backend`; both record every credential they receive.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from builder.base import BuildFailed
from builder.log import BuildLog
from builder.source import GitAccess, branch_head, fetch_commit
from core.blobs import LocalBlobStore
from core.build_settings import BuildSettings
from tests.fakes.git_http import GitHost, git_host
from tests.fakes.github import FakeGitHub, fake_github, new_private_key_pem
from tests.integration.build_fixtures import GitRemote, git, make_remote

pytestmark = pytest.mark.anyio

INSTALLATION = 7001
TOKEN = "ghs_installation7001token"
HTTP = ("https", "ssh", "http")  # the fake GitHub is plain HTTP on loopback


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    remote = make_remote(tmp_path, owner="acme", name="shop")
    remote.commit({"main.py": "print('hi')\n"}, "first")
    git(remote.bare, "config", "uploadpack.allowReachableSHA1InWant", "true")
    return remote


@pytest.fixture
def github(remote: GitRemote) -> Iterator[FakeGitHub]:
    with fake_github(1, new_private_key_pem()) as fake:
        fake.installations[INSTALLATION] = {"acme/shop", "acme/moved"}
        fake.repos["acme/shop"] = remote.bare
        fake.tokens[TOKEN] = (INSTALLATION, datetime.now(UTC) + timedelta(hours=1))
        yield fake


@pytest.fixture
def other(remote: GitRemote, github: FakeGitHub) -> Iterator[GitHost]:
    with git_host(remote.bare.parent.parent, github.ledger) as host:  # serves /acme/shop.git
        yield host


async def _fetch(url: str, sha: str, into: Path, access: GitAccess, tmp_path: Path) -> None:
    log = BuildLog(LocalBlobStore(tmp_path / "blobs"), "bld-test", steps=1)
    try:
        await fetch_commit(
            url, sha, into, log=log, settings=BuildSettings(clone_timeout_seconds=30), access=access
        )
    finally:
        await log.close()


def _host(url: str) -> str:
    return url.split("://", 1)[1]


async def test_the_token_fetches_from_github_and_only_github_received_it(
    tmp_path: Path, remote: GitRemote, github: FakeGitHub, other: GitHost
) -> None:
    access = GitAccess(github.url, TOKEN, HTTP)
    await _fetch(f"{github.url}/acme/shop.git", remote.shas[0], tmp_path / "a", access, tmp_path)
    assert (tmp_path / "a" / "main.py").read_text() == "print('hi')\n"
    head = await branch_head(
        f"{github.url}/acme/shop.git", "main", settings=BuildSettings(), access=access
    )
    assert head == remote.shas[0]
    # the same token, for the same owner/name on another host: git sends it nowhere
    await _fetch(f"{other.url}/acme/shop.git", remote.shas[0], tmp_path / "b", access, tmp_path)
    assert github.ledger.hosts_of(TOKEN) == {_host(github.url)}
    assert github.ledger.received and all(
        host == _host(github.url) for host, _ in github.ledger.received
    )


async def test_without_the_token_github_refuses_a_private_repository(
    tmp_path: Path, remote: GitRemote, github: FakeGitHub
) -> None:
    with pytest.raises(BuildFailed):
        await _fetch(
            f"{github.url}/acme/shop.git",
            remote.shas[0],
            tmp_path / "a",
            GitAccess(github.url, None, HTTP),
            tmp_path,
        )


async def test_a_redirect_to_another_host_never_carries_the_token(
    tmp_path: Path, remote: GitRemote, github: FakeGitHub, other: GitHost
) -> None:
    github.redirects["acme/moved"] = f"{other.url}/acme/shop.git"
    access = GitAccess(github.url, TOKEN, HTTP)
    # GitHub takes the token, then answers 301 to the other host: git (2.39) does not follow a
    # redirect of a request it authenticated and the fetch fails; whichever it does, the other
    # host must never receive the token
    with contextlib.suppress(BuildFailed):
        await _fetch(
            f"{github.url}/acme/moved.git", remote.shas[0], tmp_path / "a", access, tmp_path
        )
    assert github.redirected and github.redirected[0].startswith(other.url)
    assert github.ledger.hosts_of(TOKEN) == {_host(github.url)}  # never localhost:<port>


def test_an_unscoped_header_would_have_leaked_it(
    tmp_path: Path, remote: GitRemote, github: FakeGitHub, other: GitHost
) -> None:
    """The check above can fail: the old, unscoped `http.extraHeader` reaches the other host."""
    import base64
    import subprocess

    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    subprocess.run(
        ["git", "ls-remote", f"{other.url}/acme/shop.git"],
        env={
            "PATH": "/usr/bin:/bin",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        },
        check=True,
        capture_output=True,
    )
    assert _host(other.url) in github.ledger.hosts_of(TOKEN)
