"""Fetch exactly one commit of a git repository into a fresh folder, with real git."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

from builder.base import BuildFailed
from builder.commands import run_logged
from builder.log import BuildLog
from core.build_settings import BuildSettings


def _git_env(token: str | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    if token:
        # Through git's environment-config (never argv, the URL or .git/config): the token
        # must not end up anywhere that is stored or shown.
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env |= {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }
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
    token: str | None = None,
) -> None:
    """Check out `commit_sha` of `repo_url` (shallow, no tags, submodules only if enabled)."""
    await asyncio.to_thread(destination.mkdir, parents=True, exist_ok=False)
    env = _git_env(token)
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
    repo_url: str, branch: str, *, settings: BuildSettings, token: str | None = None
) -> str:
    """The commit `branch` points at now (`git ls-remote`); BuildFailed if there is none."""
    process = await asyncio.create_subprocess_exec(
        "git",
        "ls-remote",
        "--heads",
        repo_url,
        f"refs/heads/{branch}",
        env=_git_env(token),
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
