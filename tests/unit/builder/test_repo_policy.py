"""The repository URL policy, rule by rule, with the expected answers written out."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from builder.repo_policy import RepoPolicy, RepositoryRefused, address_kind, resolve

pytestmark = pytest.mark.anyio

GITHUB = RepoPolicy(github_url="https://github.com")
WITH_HOSTS = RepoPolicy(
    github_url="https://github.com", git_hosts=("gitlab.com", "git.internal.example", "localhost")
)
ANSWERS = {
    "gitlab.com": ["172.65.251.78"],
    "git.internal.example": ["10.1.2.3"],
    "localhost": ["127.0.0.1"],
    "github.com": ["127.0.0.1"],  # never asked: the configured GitHub is not resolved
}


async def stub_resolver(host: str) -> Sequence[str]:
    return ANSWERS.get(host, [])


@pytest.mark.parametrize(
    ("policy", "url", "rule", "message"),
    [
        (GITHUB, "file:///srv/acme/shop", "file-repository", "only for `conveyor dev`"),
        (GITHUB, "file:///etc/acme/shop", "file-repository", "CONVEYOR_BUILDS__ALLOW_FILE_REPOS"),
        (GITHUB, "http://github.com/acme/shop", "scheme", "not http://"),
        (GITHUB, "git://github.com/acme/shop", "scheme", "not git://"),
        (GITHUB, "ftp://github.com/acme/shop", "scheme", "not ftp://"),
        (GITHUB, "https://127.0.0.1/acme/shop", "ip-address", "127.0.0.1 is a loopback address"),
        (
            GITHUB,
            "https://169.254.169.254/latest/meta-data",
            "ip-address",
            "169.254.169.254 is a link-local address",
        ),
        (GITHUB, "ssh://git@10.0.0.1/acme/shop.git", "ip-address", "10.0.0.1 is a private address"),
        (GITHUB, "git@192.168.1.5:acme/shop.git", "ip-address", "192.168.1.5 is a private address"),
        (GITHUB, "https://[::1]/acme/shop", "ip-address", "::1 is a loopback address"),
        (
            GITHUB,
            "https://[::ffff:127.0.0.1]/acme/shop",
            "ip-address",
            "::ffff:127.0.0.1 is a loopback address",
        ),
        (GITHUB, "https://0.0.0.0/acme/shop", "ip-address", "0.0.0.0 is an unspecified address"),
        (GITHUB, "https://8.8.8.8/acme/shop", "ip-address", "8.8.8.8 is a public address"),
        (GITHUB, "https://gitlab.com/acme/shop", "git-host", "gitlab.com is not an allowed"),
        (
            GITHUB,
            "https://github.com.evil.example/acme/shop",
            "git-host",
            "github.com.evil.example is not an allowed git host (allowed: github.com;",
        ),
        (GITHUB, "https://github.com@evil.example/acme/shop", "git-host", "evil.example is not"),
        (GITHUB, "git@gitlab.com:acme/shop.git", "git-host", "gitlab.com is not an allowed"),
        (
            WITH_HOSTS,
            "https://git.internal.example/acme/shop",
            "resolves-to",
            "git.internal.example resolves to 10.1.2.3, a private address",
        ),
        (
            WITH_HOSTS,
            "https://localhost/acme/shop",
            "resolves-to",
            "localhost resolves to 127.0.0.1, a loopback address",
        ),
    ],
)
async def test_refused_urls_name_their_rule(
    policy: RepoPolicy, url: str, rule: str, message: str
) -> None:
    with pytest.raises(RepositoryRefused) as refused:
        await policy.check(url, stub_resolver)
    assert refused.value.rule == rule
    assert message in refused.value.message
    assert refused.value.message.endswith(f"[rule: {rule}]")
    assert refused.value.http_status == 400


@pytest.mark.parametrize(
    ("policy", "url", "pins"),
    [
        (GITHUB, "https://github.com/acme/shop", ()),
        (GITHUB, "https://github.com/acme/shop.git", ()),
        (GITHUB, "git@github.com:acme/shop.git", ()),
        (GITHUB, "ssh://git@github.com/acme/shop.git", ()),
        (WITH_HOSTS, "https://gitlab.com/acme/shop", ("172.65.251.78",)),
        (WITH_HOSTS, "git@gitlab.com:acme/shop.git", ("172.65.251.78",)),
        (RepoPolicy("https://github.com", allow_file=True), "file:///srv/acme/shop", ()),
        # the configured GitHub passes as configured, even on plain HTTP on loopback
        (RepoPolicy("http://127.0.0.1:8958"), "http://127.0.0.1:8958/acme/shop", ()),
    ],
)
async def test_allowed_urls_and_the_addresses_git_is_pinned_to(
    policy: RepoPolicy, url: str, pins: tuple[str, ...]
) -> None:
    assert await policy.check(url, stub_resolver) == pins


async def test_only_the_configured_github_url_itself_is_trusted() -> None:
    policy = RepoPolicy("http://127.0.0.1:8958")
    with pytest.raises(RepositoryRefused) as other_port:
        await policy.check("http://127.0.0.1:8959/acme/shop", stub_resolver)
    assert other_port.value.rule == "scheme"
    with pytest.raises(RepositoryRefused) as https_ip:
        await policy.check("https://127.0.0.1:8959/acme/shop", stub_resolver)
    assert https_ip.value.rule == "ip-address"


async def test_a_real_name_resolving_to_loopback_is_refused() -> None:
    assert "127.0.0.1" in await resolve("localhost")
    with pytest.raises(RepositoryRefused) as refused:
        await WITH_HOSTS.check("https://localhost/acme/shop")
    assert refused.value.rule == "resolves-to"
    assert "a loopback address" in refused.value.message


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "non-public"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("8.8.8.8", None),
        ("140.82.112.3", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_kind(address) == kind


@pytest.mark.parametrize(
    ("policy", "url", "full_name"),
    [
        (GITHUB, "https://github.com/Acme/Shop", "acme/shop"),
        (GITHUB, "https://github.com/acme/shop.git", "acme/shop"),
        (GITHUB, "git@github.com:acme/shop.git", "acme/shop"),
        (GITHUB, "ssh://git@github.com/acme/shop", "acme/shop"),
        (GITHUB, "https://github.com/acme/shop/extra", None),
        (GITHUB, "https://github.com/shop", None),
        (WITH_HOSTS, "https://gitlab.com/acme/shop", None),
        (GITHUB, "http://127.0.0.1:8958/acme/shop", None),
        (GITHUB, "file:///etc/acme/shop", None),
        (GITHUB, "https://169.254.169.254/acme/shop", None),
        (RepoPolicy("http://127.0.0.1:8958"), "http://127.0.0.1:8958/acme/shop.git", "acme/shop"),
        (RepoPolicy("http://127.0.0.1:8958"), "http://127.0.0.1:9/acme/shop", None),
        (RepoPolicy("file:///srv/remotes"), "file:///srv/remotes/octo/hello.git", "octo/hello"),
        (RepoPolicy("file:///srv/remotes"), "file:///srv/other/octo/hello.git", None),
    ],
)
def test_which_urls_are_a_repository_on_the_configured_github(
    policy: RepoPolicy, url: str, full_name: str | None
) -> None:
    assert policy.github_full_name(url) == full_name
