"""Blobs as objects in an S3 bucket (boto3); logs are spooled to a local file until committed."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.blobs.base import BlobNotFound, BlobStoreUnavailable
from core.data_dir import make_private_dirs

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

# keys are built from ids (`logs/<run>/<n>.log`): anything else is a bug, not a blob
_KEY = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
T = TypeVar("T")
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
# boto3 switches to a multipart upload above this size, in parts of the same size
_PART_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class S3Location:
    """`s3://bucket/prefix`: where the store's keys live."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3":
            raise ValueError(f"blob store URL {url!r} is not an s3:// URL")
        if not parts.netloc:
            raise ValueError(
                f"blob store URL {url!r} names no bucket (expected s3://bucket/prefix)"
            )
        if parts.query or parts.fragment:
            raise ValueError(f"blob store URL {url!r} may not have a query or fragment")
        prefix = parts.path.strip("/")
        if prefix and not _built_from_ids(prefix):
            raise ValueError(f"blob store URL {url!r} has an unusable prefix {prefix!r}")
        return cls(parts.netloc, prefix)

    def key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None = None
    region: str | None = None
    presign_seconds: int = 900


def make_client(options: S3Options) -> S3Client:
    """One client per store: boto3 clients are thread-safe, sessions are not."""
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=options.endpoint_url,
        region_name=options.region,
        # the default pool (10) would serialise the worker threads of asyncio.to_thread
        config=Config(max_pool_connections=32, retries={"mode": "standard"}),
    )


def _built_from_ids(path: str) -> bool:
    return bool(_KEY.fullmatch(path)) and not any(part in (".", "..") for part in path.split("/"))


def _checked(key: str) -> str:
    if not _built_from_ids(key):
        raise ValueError(f"blob key is not built from ids: {key!r}")
    return key


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "?"))


def _cause(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "")
        return f"{_code(exc)} {message}".strip()
    return str(exc) or type(exc).__name__


class S3BlobStore:
    def __init__(
        self, location: S3Location, spool: Path, options: S3Options, client: S3Client
    ) -> None:
        self.location = location
        self.spool = spool.resolve()
        self._options = options
        self._client = client
        self._transfer = TransferConfig(
            multipart_threshold=_PART_BYTES, multipart_chunksize=_PART_BYTES
        )

    @classmethod
    def from_url(cls, url: str, spool: Path, options: S3Options) -> S3BlobStore:
        return cls(S3Location.parse(url), spool, options, make_client(options))

    def _where(self) -> str:
        return f"bucket {self.location.bucket!r} at {self._options.endpoint_url or 'AWS S3'}"

    async def _call(
        self, what: str, call: Callable[[], T], *, expected: frozenset[str] = frozenset()
    ) -> T:
        """`call()` in a worker thread; S3 failures other than `expected` codes name the blob."""
        try:
            return await asyncio.to_thread(call)
        except (ClientError, BotoCoreError, Boto3Error) as exc:
            if isinstance(exc, ClientError) and _code(exc) in expected:
                raise
            cause = _cause(exc)
            raise BlobStoreUnavailable(f"S3 {what} in {self._where()} failed: {cause}") from exc

    async def check(self) -> None:
        head = partial(self._client.head_bucket, Bucket=self._bucket)
        await self._call("check of the blob store", head)
        await asyncio.to_thread(make_private_dirs, self.spool)

    @property
    def _bucket(self) -> str:
        return self.location.bucket

    async def put(self, key: str, data: bytes) -> None:
        name = self.location.key(_checked(key))
        upload = partial(
            self._client.upload_fileobj, io.BytesIO(data), self._bucket, name, Config=self._transfer
        )
        await self._call(f"upload of {key}", upload)

    async def get(self, key: str) -> bytes:
        staged = self._spooled(key)
        if staged.exists():
            # registration logs are read while staged; the spool is the blob until committed
            return await asyncio.to_thread(staged.read_bytes)
        return await self._get_object(key, None)

    async def exists(self, key: str) -> bool:
        if self._spooled(key).exists():
            return True
        name = self.location.key(_checked(key))
        try:
            head = partial(self._client.head_object, Bucket=self._bucket, Key=name)
            await self._call(f"head of {key}", head, expected=_MISSING)
        except ClientError:
            return False
        return True

    def staging_path(self, key: str) -> Path:
        path = self._spooled(key)
        make_private_dirs(path.parent)
        return path

    async def commit_staged(self, key: str) -> None:
        path = self._spooled(key)
        if not path.exists():
            # committed already (an attempt ended twice), or the process never wrote a byte
            return
        name = self.location.key(key)
        upload = partial(
            self._client.upload_file, str(path), self._bucket, name, Config=self._transfer
        )
        await self._call(f"upload of staged {key}", upload)
        # only after the upload: readers fall back to S3 once the spool file is gone
        path.unlink(missing_ok=True)
        logger.debug("committed %s to %s", key, self._where())

    async def read_range(self, key: str, offset: int, limit: int) -> bytes:
        if limit <= 0:
            return b""
        try:
            return await asyncio.to_thread(self._read_spool, self._spooled(key), offset, limit)
        except FileNotFoundError:
            pass
        return await self._get_object(key, (offset, limit))

    def presigned_url(self, key: str) -> str | None:
        # signing is local computation: no request is made, so no thread is needed
        return self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._bucket, "Key": self.location.key(_checked(key))},
            ExpiresIn=self._options.presign_seconds,
        )

    def _spooled(self, key: str) -> Path:
        return self.spool / _checked(key)

    @staticmethod
    def _read_spool(path: Path, offset: int, limit: int) -> bytes:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(limit)

    async def _get_object(self, key: str, window: tuple[int, int] | None) -> bytes:
        name = self.location.key(_checked(key))

        def download() -> bytes:
            if window is None:
                response = self._client.get_object(Bucket=self._bucket, Key=name)
            else:
                wanted = f"bytes={window[0]}-{sum(window) - 1}"
                response = self._client.get_object(Bucket=self._bucket, Key=name, Range=wanted)
            with response["Body"] as body:
                return body.read()

        try:
            return await self._call(
                f"download of {key}", download, expected=_MISSING | {"InvalidRange"}
            )
        except ClientError as exc:
            if _code(exc) == "InvalidRange":
                return b""  # offset at or past the end: nothing more to read yet
            raise BlobNotFound(key) from None
