"""Blob store pieces that need no S3: URL parsing, settings, and the local store's seam."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.blobs import LocalBlobStore
from core.blobs.base import BlobNotFound, BlobStore, BlobStoreUnavailable
from core.blobs.s3 import S3Location
from core.settings import Settings


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://bucket", "bucket", ""),
        ("s3://bucket/", "bucket", ""),
        ("s3://bucket/prod", "bucket", "prod"),
        ("s3://bucket/env/prod/", "bucket", "env/prod"),
    ],
)
def test_s3_url_gives_bucket_and_prefix(url: str, bucket: str, prefix: str) -> None:
    assert S3Location.parse(url) == S3Location(bucket, prefix)


def test_keys_go_under_the_prefix() -> None:
    assert S3Location("b", "env/prod").key("runs/r1/input.json") == "env/prod/runs/r1/input.json"
    assert S3Location("b", "").key("runs/r1/input.json") == "runs/r1/input.json"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3:///prefix", "names no bucket"),
        ("file:///tmp/x", "is not an s3:// URL"),
        ("s3://bucket/a b", "unusable prefix"),
        ("s3://bucket/../up", "unusable prefix"),
        ("s3://bucket/p?versionId=1", "query or fragment"),
    ],
)
def test_bad_s3_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        S3Location.parse(url)


def test_blob_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_BLOBS__URL", "s3://bucket/prefix")
    monkeypatch.setenv("CONVEYOR_BLOBS__ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("CONVEYOR_BLOBS__REGION", "eu-west-1")
    monkeypatch.setenv("CONVEYOR_BLOBS__PRESIGN_SECONDS", "120")
    blobs = Settings().blobs
    assert (blobs.url, blobs.endpoint_url, blobs.region, blobs.presign_seconds) == (
        "s3://bucket/prefix",
        "http://127.0.0.1:9000",
        "eu-west-1",
        120,
    )


def test_blob_settings_default_to_the_local_store() -> None:
    blobs = Settings().blobs
    assert (blobs.url, blobs.endpoint_url, blobs.region, blobs.presign_seconds) == (
        None,
        None,
        None,
        900,
    )


@pytest.mark.anyio
async def test_local_store_satisfies_the_protocol(tmp_path: Path) -> None:
    store: BlobStore = LocalBlobStore(tmp_path / "blobs")
    await store.check()
    assert (tmp_path / "blobs").is_dir()
    assert store.presigned_url("runs/r1/output.json") is None
    await store.put("runs/r1/output.json", b"[1]")
    assert await store.exists("runs/r1/output.json")
    assert await store.get("runs/r1/output.json") == b"[1]"
    assert await store.read_range("runs/r1/output.json", 1, 1) == b"1"
    with pytest.raises(BlobNotFound):
        await store.get("runs/r2/output.json")


@pytest.mark.anyio
async def test_local_store_check_names_an_unusable_folder(tmp_path: Path) -> None:
    # a file where a parent folder should be stops even root
    (tmp_path / "taken").write_text("")
    with pytest.raises(BlobStoreUnavailable, match=r"blob folder .*taken/blobs is not usable"):
        await LocalBlobStore(tmp_path / "taken" / "blobs").check()
