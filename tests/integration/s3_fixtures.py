"""S3 for tests: moto's real HTTP server on loopback, with a fresh bucket per test.

Import the fixtures into a test module (`from tests.integration.s3_fixtures import ...`); boto3
talks to the server over HTTP exactly as it would to AWS, credentials coming from the environment.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import boto3
import pytest
from moto.server import ThreadedMotoServer

from core.blobs.s3 import S3BlobStore, S3Location, S3Options, make_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION: Final = "eu-central-1"
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "conveyor-test",
    "AWS_SECRET_ACCESS_KEY": "conveyor-test-secret",
    "AWS_DEFAULT_REGION": REGION,
    # a developer's ~/.aws must not leak into the tests
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
_bucket_numbers = itertools.count()


@dataclass(frozen=True)
class Bucket:
    name: str
    endpoint_url: str
    client: S3Client

    def url(self, prefix: str = "") -> str:
        return f"s3://{self.name}/{prefix}" if prefix else f"s3://{self.name}"

    def object_keys(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 over HTTP on 127.0.0.1 for the whole session, with test credentials set."""
    saved = {name: os.environ.get(name) for name in _AWS_ENV}
    os.environ.update(_AWS_ENV)
    # werkzeug logs every request at INFO: it would bury a failing test's own output
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[Bucket]:
    """An empty bucket of its own; emptied and removed afterwards."""
    client = boto3.session.Session().client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    name = f"conveyor-test-{os.getpid()}-{next(_bucket_numbers)}"
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    bucket = Bucket(name, s3_endpoint, client)
    try:
        yield bucket
    finally:
        for key in bucket.object_keys():
            client.delete_object(Bucket=name, Key=key)
        client.delete_bucket(Bucket=name)


def s3_store(
    bucket: Bucket, spool: Path, *, prefix: str = "blobs", presign: int = 900
) -> S3BlobStore:
    options = S3Options(endpoint_url=bucket.endpoint_url, region=REGION, presign_seconds=presign)
    return S3BlobStore(S3Location(bucket.name, prefix), spool, options, make_client(options))
