"""Fetch exactly one commit of a git repository into a fresh folder, with real git."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from builder.base import BuildFailed
from builder.commands import run_logged
from builder.log import BuildLog
from core.build_settings import BuildSettings

TOKEN_VARIABLE = "GIT_INSTALLATION_TOKEN"
# run by git's shell with the operation as $1: answers `get` only, from the environment
CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0; echo username=x-access-token; '
    f'echo "password=${TOKEN_VARIABLE}"; }}; f'
)


@dataclass(frozen=True)
class GitAccess:
    """How git may reach one repository.

    The installation token is given by a credential helper scoped to the configured GitHub URL
    (`credential.<github_url>.helper`), read from git's environment: git asks for it only when
    that host challenges, and after a redirect to another host it matches the helpers against the
    new host, where this one does not apply. (A header, even one scoped with
    `http.<url>.extraHeader`, is sent after a redirect too.) The token is never in argv, the
    URL, .git/config, nor any credential store: global and system git configs are not read.
    """

    github_url: str
    token: str | None = None
    protocols: tuple[str, ...] = ("https", "ssh")  # GIT_ALLOW_PROTOCOL (submodules too)
    pins: tuple[str, ...] = ()  # curl's `host:port:address` (the addresses the policy checked)


def git_env(access: GitAccess) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,  # no user helper may store the token
        "GIT_ALLOW_PROTOCOL": ":".join(access.protocols),
    }
    config: list[tuple[str, str]] = []
    if access.token:
        env[TOKEN_VARIABLE] = access.token
        config.append((f"credential.{access.github_url.rstrip('/')}.helper", CREDENTIAL_HELPER))
    config.extend(("http.curloptResolve", pin) for pin in access.pins)
    if config:
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for number, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{number}"] = key
            env[f"GIT_CONFIG_VALUE_{number}"] = value
    return env


def _folder_bytes(root: Path) -> int:
    total = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


async def fetch_commit(
    repo_url: str,
    commit_sha: str,
    destination: Path,
    *,
    log: BuildLog,
    settings: BuildSettings,
    access: GitAccess,
) -> None:
    """Check out `commit_sha` of `repo_url` (shallow, no tags, submodules only if enabled)."""
    await asyncio.to_thread(destination.mkdir, parents=True, exist_ok=False)
    env = git_env(access)
    timeout = settings.clone_timeout_seconds

    async def git(*args: str, what: str) -> None:
        await run_logged(
            ["git", "-c", "advice.detachedHead=false", *args],
            log=log,
            cwd=destination,
            env=env,
            timeout=timeout,
            what=what,
        )

    await git("init", "--quiet", what="git init")
    await git("remote", "add", "origin", repo_url, what="git remote add")
    await git(
        "fetch",
        "--depth=1",
        "--no-tags",
        "--no-recurse-submodules",
        "origin",
        commit_sha,
        what=f"fetching commit {commit_sha}",
    )
    await git("checkout", "--quiet", "--detach", "FETCH_HEAD", what="git checkout")
    if settings.submodules:
        await git(
            "submodule", "update", "--init", "--recursive", "--depth=1", what="fetching submodules"
        )
    size = await asyncio.to_thread(_folder_bytes, destination)
    if size > settings.max_checkout_bytes:
        raise BuildFailed(
            f"the checkout is {size} bytes, over the limit of {settings.max_checkout_bytes}"
        )
    log.line(f"checked out {commit_sha} ({size} bytes)")


async def branch_head(
    repo_url: str, branch: str, *, settings: BuildSettings, access: GitAccess
) -> str:
    """The commit `branch` points at now (`git ls-remote`); BuildFailed if there is none."""
    process = await asyncio.create_subprocess_exec(
        "git",
        "ls-remote",
        "--heads",
        repo_url,
        f"refs/heads/{branch}",
        env=git_env(access),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(settings.clone_timeout_seconds):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BuildFailed(f"git ls-remote {repo_url}: no answer within the time limit") from None
    if process.returncode != 0:
        raise BuildFailed(f"git ls-remote {repo_url}: {err.decode(errors='replace').strip()}")
    for line in out.decode().splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    raise BuildFailed(f"branch {branch!r} not found in {repo_url}")
