"""Registry credentials for pushes, kept where only the docker CLI reads them.

They go into a private Docker config folder (0700, `config.json` 0600) that `docker buildx` is
pointed at with `--config <folder>`: never into argv, the environment of a child, or a log line.
ECR gets a token from `ecr:GetAuthorizationToken` (boto3), renewed `ecr_refresh_seconds` before
it expires; a plain registry gets the configured username and password.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from core.build_settings import BuildSettings

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient

logger = logging.getLogger(__name__)

# <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]
_ECR_HOST = re.compile(r"^\d{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")

Clock = Callable[[], datetime]


def registry_host(registry: str) -> str:
    """`127.0.0.1:5000/conveyor` → `127.0.0.1:5000`: the key docker looks credentials up by."""
    return registry.split("://", 1)[-1].split("/", 1)[0]


def ecr_region(host: str) -> str | None:
    match = _ECR_HOST.match(host)
    return match.group(1) if match else None


class RegistryAuth(Protocol):
    async def config_dir(self) -> Path | None:
        """A docker config folder holding valid credentials; None: the CLI's own config."""
        ...


class NoRegistryAuth:
    """The registry needs no login, or the daemon's host is logged in already."""

    async def config_dir(self) -> Path | None:
        return None


def _write_config(folder: Path, host: str, auth: str) -> None:
    """`config.json` with one registry's `auth` (base64 of user:password), replaced atomically."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    staging = folder / "config.json.new"
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"auths": {host: {"auth": auth}}}, out)
    os.replace(staging, folder / "config.json")


class BasicRegistryAuth:
    """A plain registry: `CONVEYOR_BUILDS__REGISTRY_USERNAME` and `…_PASSWORD`."""

    def __init__(self, folder: Path, host: str, username: str, password: str) -> None:
        self._folder = folder
        self._host = host
        self._auth = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._written = False

    async def config_dir(self) -> Path:
        if not self._written:
            await asyncio.to_thread(_write_config, self._folder, self._host, self._auth)
            self._written = True
        return self._folder


class EcrRegistryAuth:
    """ECR: a token from `GetAuthorizationToken`, renewed before it expires."""

    def __init__(
        self,
        folder: Path,
        host: str,
        client: ECRClient,
        *,
        refresh_before: timedelta,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._folder = folder
        self._host = host
        self._client = client
        self._refresh_before = refresh_before
        self._clock = clock
        self._expires_at: datetime | None = None
        self._lock = asyncio.Lock()
        self.renewals = 0

    async def config_dir(self) -> Path:
        async with self._lock:
            expires = self._expires_at
            if expires is None or self._clock() >= expires - self._refresh_before:
                await asyncio.to_thread(self._renew)
        return self._folder

    def _renew(self) -> None:
        answer = self._client.get_authorization_token()
        data = answer["authorizationData"][0]
        token, expires_at = data["authorizationToken"], data["expiresAt"]
        # the token is base64 of `AWS:<password>`: what `auth` holds in a docker config already
        _write_config(self._folder, self._host, token)
        self._expires_at = expires_at.astimezone(UTC)
        self.renewals += 1
        logger.info("ECR credentials for %s renewed, valid until %s", self._host, expires_at)


def make_registry_auth(settings: BuildSettings, folder: Path) -> RegistryAuth:
    """What `settings` ask for (`registry_auth`; "auto": ECR for an ECR host, else basic when a
    username is set, else none)."""
    if settings.registry is None or settings.registry_auth == "none":
        return NoRegistryAuth()
    host = registry_host(settings.registry)
    kind = settings.registry_auth
    if kind == "auto":
        if ecr_region(host) is not None:
            kind = "ecr"
        elif settings.registry_username:
            kind = "basic"
        else:
            return NoRegistryAuth()
    if kind == "basic":
        if not settings.registry_username or settings.registry_password is None:
            raise ValueError(
                "CONVEYOR_BUILDS__REGISTRY_AUTH=basic needs CONVEYOR_BUILDS__REGISTRY_USERNAME "
                "and CONVEYOR_BUILDS__REGISTRY_PASSWORD"
            )
        password = settings.registry_password.get_secret_value()
        return BasicRegistryAuth(folder, host, settings.registry_username, password)
    import boto3  # only builders that push to ECR pay for it

    # botocore's DEBUG lines hold whole response bodies: the token would be among them
    botocore = logging.getLogger("botocore")
    if botocore.level < logging.INFO:
        botocore.setLevel(logging.INFO)
    client = boto3.session.Session().client(
        "ecr",
        region_name=settings.ecr_region or ecr_region(host),
        endpoint_url=settings.ecr_endpoint_url,
    )
    refresh = timedelta(seconds=settings.ecr_refresh_seconds)
    return EcrRegistryAuth(folder, host, client, refresh_before=refresh)
