"""Real git remotes, GitHub-shaped webhooks, and an engine with the build pipeline over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from starlette.types import ASGIApp

from app.github.installations import InstallationOwners
from app.github.signature import sign
from app.server import create_app
from core.build_settings import BuildSettings, GitHubSettings
from core.settings import LimitSettings, Settings
from scheduler.runtime import DEFAULT_WORKSPACE_ID, Runtime
from tests.integration.engine_fixtures import executor_settings
from tests.served import ServedEngine, serve_engine

T = TypeVar("T")
WS = DEFAULT_WORKSPACE_ID
APP_ID = 4242
INSTALLATION_ID = 31_000_000_123
SECRET = "webhook-secret-for-tests"


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


@dataclass
class GitRemote:
    """A bare repository at `.../owner/name.git` (served by file://) and a clone to commit in."""

    bare: Path
    work: Path
    owner: str
    name: str
    shas: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def commit(self, files: dict[str, str] | dict[str, bytes], message: str) -> str:
        for relative, content in files.items():
            path = self.work / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD:main")
        sha = git(self.work, "rev-parse", "HEAD")
        self.shas.append(sha)
        return sha


def make_remote(root: Path, owner: str = "octo", name: str = "hello") -> GitRemote:
    bare = root / "remotes" / owner / f"{name}.git"
    bare.mkdir(parents=True)
    git(bare, "init", "-q", "--bare", "-b", "main")
    work = root / "work" / name
    work.mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    git(work, "remote", "add", "origin", bare.as_uri())
    return GitRemote(bare, work, owner, name)


def make_wheel(folder: Path, name: str, version: str, source: str) -> Path:
    """A pure-Python wheel with one module, so dependency installs need no package index."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": source.encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return wheel


def push_payload(
    remote: GitRemote, before: str, after: str, branch: str = "main"
) -> dict[str, Any]:
    """A `push` event as GitHub documents it (the fields a receiver reads, and their neighbours)."""
    owner = {"login": remote.owner, "id": 583231, "type": "Organization"}
    return {
        "ref": f"refs/heads/{branch}",
        "before": before,
        "after": after,
        "created": before == "0" * 40,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"https://github.com/{remote.full_name}/compare/{before[:12]}...{after[:12]}",
        "commits": [
            {
                "id": after,
                "tree_id": "0" * 40,
                "distinct": True,
                "message": "change",
                "timestamp": "2026-11-25T12:00:00Z",
                "url": f"https://github.com/{remote.full_name}/commit/{after}",
                "author": {"name": "Test", "email": "test@example.com"},
                "committer": {"name": "Test", "email": "test@example.com"},
                "added": [],
                "removed": [],
                "modified": ["main.py"],
            }
        ],
        "head_commit": {"id": after, "message": "change"},
        "repository": {
            "id": 1296269,
            "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
            "name": remote.name,
            "full_name": remote.full_name,
            "private": True,
            "owner": owner,
            "html_url": f"https://github.com/{remote.full_name}",
            "clone_url": f"https://github.com/{remote.full_name}.git",
            "default_branch": "main",
        },
        "pusher": {"name": "Test", "email": "test@example.com"},
        "sender": {"login": "test", "id": 1, "type": "User"},
        "installation": {"id": INSTALLATION_ID, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u"},
    }


def installation_payload(action: str, repositories: list[str]) -> dict[str, Any]:
    return {
        "action": action,
        "installation": {
            "id": INSTALLATION_ID,
            "account": {"login": "octo", "id": 583231, "type": "Organization"},
            "repository_selection": "selected",
            "app_id": APP_ID,
            "target_type": "Organization",
            "permissions": {"checks": "write", "contents": "read"},
            "events": ["push"],
        },
        "repositories": [
            {"id": 1296269 + i, "name": n.split("/")[1], "full_name": n, "private": True}
            for i, n in enumerate(repositories)
        ],
        "sender": {"login": "test", "id": 1, "type": "User"},
    }


def send_webhook(
    client: httpx.Client,
    event: str,
    payload: Any,
    *,
    secret: str | None = SECRET,
    delivery: str | None = None,
    raw: bytes | None = None,
) -> httpx.Response:
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/abc123",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "123456",
    }
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(secret, body)
    return client.post("/github/webhook", content=body, headers=headers)


def build_settings(
    data_dir: Path, github_url: str, private_key: str, *, remotes: Path | None = None
) -> Settings:
    """A server whose "GitHub" keeps its repositories in `remotes` (`<data_dir>/../remotes`, where
    `make_remote` puts them), served by file://, which these tests turn on explicitly."""
    remotes = remotes or data_dir.parent / "remotes"
    return Settings(
        data_dir=data_dir,
        limits=LimitSettings(min_timeout_seconds=1, registration_timeout_seconds=60),
        executor=executor_settings(kill_grace_seconds=1.0),
        builds=BuildSettings(
            clone_timeout_seconds=60, build_timeout_seconds=300, allow_file_repos=True
        ),
        github=GitHubSettings(
            app_id=APP_ID,
            private_key=private_key,
            webhook_secret=SECRET,
            api_url=github_url,
            web_url=remotes.as_uri(),
        ),
    )


BuildServer = ServedEngine


async def _close_build_services(apps: list[ASGIApp]) -> None:
    for app in apps:
        services = getattr(getattr(app, "state", None), "builds", None)
        if services is not None:
            await services.pipeline.close()


@contextmanager
def serve_builds(
    settings: Settings, installations: Sequence[int] = (INSTALLATION_ID,)
) -> Iterator[BuildServer]:
    """The engine with the API, the webhook and the build pipeline, on a loopback port; the
    default workspace owns `installations` (their pushes build its workflows)."""

    def make_app(runtime: Runtime) -> ASGIApp:
        return create_app(runtime, anonymous_workspace=WS)

    async def start(runtime: Runtime) -> None:
        owners = InstallationOwners(runtime.store.sessions)
        for installation in installations:
            await owners.connect(installation, WS, by="tests", exclusive=False)
        await runtime.start()

    with serve_engine(
        settings, start, [make_app], cleanup=_close_build_services, name="build-server"
    ) as served:
        yield served


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 90, interval: float = 0.1
) -> T:
    """Poll `probe` until it returns something other than None, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_build(client: httpx.Client, build_id: str, timeout: float = 120) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        build: dict[str, Any] = client.get(f"/v1/builds/{build_id}").json()
        return build if build["status"] in ("succeeded", "failed") else None

    return wait_for(f"build {build_id}", probe, timeout)
