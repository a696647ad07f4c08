"""How git may reach a workflow's repository, decided right before each fetch."""

from __future__ import annotations

from builder.repo_policy import RepoPolicy, Resolver, locate, repo_policy, resolve
from builder.source import GitAccess
from core.settings import Settings


async def access_for(
    settings: Settings, repo_url: str, token: str | None, *, resolver: Resolver = resolve
) -> GitAccess:
    """The policy checked again (the name resolved now), the protocols git may use, the token
    only for a repository on the configured GitHub; RepositoryRefused when refused."""
    policy = repo_policy(settings)
    addresses = await policy.check(repo_url, resolver)
    return GitAccess(
        github_url=settings.github.web_url,
        token=token if policy.on_github(repo_url) else None,
        protocols=_protocols(policy),
        pins=_pins(repo_url, addresses),
    )


def _protocols(policy: RepoPolicy) -> tuple[str, ...]:
    protocols = ["https", "ssh"]
    if policy.allow_file:
        protocols.append("file")
    github_scheme = locate(policy.github_url).scheme
    if github_scheme not in protocols:  # a GitHub configured on http:// or file://
        protocols.append(github_scheme)
    return tuple(protocols)


def _pins(repo_url: str, addresses: tuple[str, ...]) -> tuple[str, ...]:
    where = locate(repo_url)
    if where.scheme != "https" or not addresses:
        return ()  # SSH resolves on its own; nothing was resolved for trusted hosts
    listed = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
    return (f"{where.host}:{where.port or 443}:{listed}",)
