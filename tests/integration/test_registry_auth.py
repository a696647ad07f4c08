"""Registry credentials: an ECR token from moto's server (renewed before it expires), a plain
registry's password, and a real BuildKit push during which neither shows in any process's argv
or in any log."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import stat
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path

import boto3
import pytest

from builder.base import BuildRequest
from builder.buildkit import BuildKitBuilder
from builder.log import BuildLog
from builder.registry_auth import (
    BasicRegistryAuth,
    EcrRegistryAuth,
    NoRegistryAuth,
    make_registry_auth,
    registry_host,
)
from core.blobs import LocalBlobStore
from core.build_settings import BuildSettings
from core.settings import DockerSettings, Settings
from tests.integration.builder_fixtures import DOCKER, REGISTRY, docker_ready, push_registry_base
from tests.integration.s3_fixtures import REGION, s3_endpoint  # noqa: F401 (moto's server)

pytestmark = pytest.mark.anyio

ECR_HOST = f"123456789012.dkr.ecr.{REGION}.amazonaws.com"


def _auths(folder: Path) -> dict[str, dict[str, str]]:
    config = folder / "config.json"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    auths: dict[str, dict[str, str]] = json.loads(config.read_text())["auths"]
    return auths


def _ecr_token(endpoint: str) -> str:
    client = boto3.session.Session().client("ecr", region_name=REGION, endpoint_url=endpoint)
    return client.get_authorization_token()["authorizationData"][0]["authorizationToken"]


def test_the_kind_of_credentials_follows_the_registry(tmp_path: Path) -> None:
    def kind(**options: object) -> type:
        return type(make_registry_auth(BuildSettings(**options), tmp_path))  # type: ignore[arg-type]

    assert kind() is NoRegistryAuth
    assert kind(registry="127.0.0.1:5000/c") is NoRegistryAuth
    assert kind(registry=f"{ECR_HOST}/workflows") is EcrRegistryAuth
    assert kind(registry="reg.example.com/c", registry_username="u", registry_password="p") is (
        BasicRegistryAuth
    )
    assert kind(registry=f"{ECR_HOST}/workflows", registry_auth="none") is NoRegistryAuth
    with pytest.raises(ValueError, match="REGISTRY_PASSWORD"):
        kind(registry="reg.example.com/c", registry_auth="basic", registry_username="u")
    assert registry_host("https://reg.example.com:443/a/b") == "reg.example.com:443"


async def test_basic_credentials_are_written_for_the_registry_host(tmp_path: Path) -> None:
    settings = BuildSettings(
        registry="reg.example.com:5000/team",
        registry_username="robot",
        registry_password="pa55-word",  # type: ignore[arg-type]
    )
    folder = await make_registry_auth(settings, tmp_path / "cfg").config_dir()
    assert folder is not None
    (auth,) = _auths(folder).items()
    assert auth[0] == "reg.example.com:5000"
    assert base64.b64decode(auth[1]["auth"]).decode() == "robot:pa55-word"
    assert "pa55-word" not in repr(settings), "the password is a secret in the settings too"


async def test_an_ecr_token_is_renewed_before_it_expires(s3_endpoint: str, tmp_path: Path) -> None:  # noqa: F811
    client = boto3.session.Session().client("ecr", region_name=REGION, endpoint_url=s3_endpoint)
    expires = client.get_authorization_token()["authorizationData"][0]["expiresAt"]
    now = [expires.astimezone(UTC) - timedelta(hours=2)]
    auth = EcrRegistryAuth(
        tmp_path / "cfg",
        ECR_HOST,
        client,
        refresh_before=timedelta(minutes=30),
        clock=lambda: now[0],
    )
    folder = await auth.config_dir()
    assert _auths(folder)[ECR_HOST]["auth"] == _ecr_token(s3_endpoint)
    await auth.config_dir()
    assert auth.renewals == 1, "a valid token is kept"
    now[0] += timedelta(minutes=95)  # 25 minutes before it expires
    await auth.config_dir()
    assert auth.renewals == 2


class CommandLines:
    """Every command line seen on this machine while it watches (sampled every 10 ms)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        line = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                    except OSError:
                        continue
                    with self._lock:
                        self._seen.add(line.decode(errors="replace"))
            self._done.wait(0.01)

    def text(self) -> str:
        with self._lock:
            return "\n".join(sorted(self._seen))


@pytest.fixture
def command_lines() -> Iterator[CommandLines]:
    watch = CommandLines()
    watch._thread.start()
    try:
        yield watch
    finally:
        watch._done.set()
        watch._thread.join(10)


@pytest.mark.slow
async def test_a_push_with_ecr_credentials_shows_them_nowhere(
    s3_endpoint: str,  # noqa: F811
    tmp_path: Path,
    command_lines: CommandLines,
    caplog: pytest.LogCaptureFixture,
) -> None:
    problem = docker_ready()
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    base = await asyncio.to_thread(push_registry_base)
    token = _ecr_token(s3_endpoint)
    secret = base64.b64decode(token).decode().partition(":")[2]
    prefix = f"{REGISTRY}/cvy-ra-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=tmp_path / "data",
        docker=DockerSettings(binary=DOCKER),
        builds=BuildSettings(
            builder="buildkit",
            base_image=base,
            registry=prefix,
            # the local registry takes any login: the token is really handed to docker
            registry_auth="ecr",
            ecr_region=REGION,
            ecr_endpoint_url=s3_endpoint,
        ),
    )
    source = tmp_path / "src"
    source.mkdir()
    (source / "main.py").write_text("from conveyor import Workflows\napp = Workflows()\n")
    blobs = LocalBlobStore(tmp_path / "blobs")
    log = BuildLog(blobs, "bld-auth", steps=4)
    caplog.set_level(logging.DEBUG)
    builder = BuildKitBuilder(settings)
    built = await builder.build(
        BuildRequest("bld-auth", "authwf", source, "", commit_sha="a" * 40), log
    )
    await log.close()
    assert built.image == f"{prefix}/authwf:{'a' * 12}"

    config = settings.data_dir / "docker-config"
    assert _auths(config)[REGISTRY]["auth"] == token
    argv = command_lines.text()
    assert f"--config {config}" in argv, "docker was given the folder"
    for text in (argv, (await blobs.get(log.key)).decode(), caplog.text):
        assert token not in text and secret not in text
    assert os.environ.get("DOCKER_CONFIG") is None
