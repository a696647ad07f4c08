"""S3BlobStore against moto's S3 over real HTTP: every method of the BlobStore seam."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from core.blobs.base import BlobNotFound, BlobStore, BlobStoreUnavailable
from core.blobs.s3 import S3BlobStore, S3Location, S3Options, make_client
from tests.integration.s3_fixtures import REGION, Bucket, s3_bucket, s3_endpoint, s3_store

pytestmark = pytest.mark.anyio
__all__ = ["s3_bucket", "s3_endpoint"]  # re-exported: pytest finds fixtures by module name


def test_satisfies_the_protocol(s3_bucket: Bucket, tmp_path: Path) -> None:
    store: BlobStore = s3_store(s3_bucket, tmp_path)
    assert store.presigned_url("runs/r1/output.json") is not None


async def test_put_get_exists_round_trip(s3_bucket: Bucket, tmp_path: Path) -> None:
    store = s3_store(s3_bucket, tmp_path, prefix="env/prod")
    assert not await store.exists("runs/r1/input.json")
    await store.put("runs/r1/input.json", b'{"a":1}')
    assert await store.exists("runs/r1/input.json")
    assert await store.get("runs/r1/input.json") == b'{"a":1}'
    assert s3_bucket.object_keys() == ["env/prod/runs/r1/input.json"]


async def test_overwrite_replaces_content(s3_bucket: Bucket, tmp_path: Path) -> None:
    store = s3_store(s3_bucket, tmp_path)
    await store.put("runs/r1/output.json", b"first")
    await store.put("runs/r1/output.json", b"second")
    assert await store.get("runs/r1/output.json") == b"second"


async def test_missing_key_is_blob_not_found(s3_bucket: Bucket, tmp_path: Path) -> None:
    store = s3_store(s3_bucket, tmp_path)
    with pytest.raises(BlobNotFound):
        await store.get("runs/nope/output.json")
    with pytest.raises(BlobNotFound):
        await store.read_range("logs/nope/1.log", 0, 100)


async def test_keys_not_built_from_ids_are_refused(s3_bucket: Bucket, tmp_path: Path) -> None:
    store = s3_store(s3_bucket, tmp_path)
    for key in ("../escape", "/abs", "runs//x", "runs/a b", "runs/./x", ""):
        with pytest.raises(ValueError, match="not built from ids"):
            await store.put(key, b"x")
        with pytest.raises(ValueError, match="not built from ids"):
            store.staging_path(key)


async def test_range_reads_of_a_committed_blob(s3_bucket: Bucket, tmp_path: Path) -> None:
    store = s3_store(s3_bucket, tmp_path)
    data = bytes(range(256)) * 40
    await store.put("logs/r1/1.log", data)
    assert await store.read_range("logs/r1/1.log", 0, 10) == data[:10]
    assert await store.read_range("logs/r1/1.log", 1000, 500) == data[1000:1500]
    assert await store.read_range("logs/r1/1.log", len(data) - 5, 100) == data[-5:]
    assert await store.read_range("logs/r1/1.log", len(data), 100) == b""
    assert await store.read_range("logs/r1/1.log", len(data) + 50, 100) == b""
    assert await store.read_range("logs/r1/1.log", 3, 0) == b""


async def test_staged_log_is_tailed_live_then_committed(s3_bucket: Bucket, tmp_path: Path) -> None:
    store = s3_store(s3_bucket, tmp_path / "spool")
    path = store.staging_path("logs/r1/1.log")
    assert path.is_relative_to(tmp_path / "spool")
    with path.open("ab") as log:
        log.write(b"line one\n")
        log.flush()
        assert await store.read_range("logs/r1/1.log", 0, 100) == b"line one\n"
        log.write(b"line two\n")
        log.flush()
        assert await store.read_range("logs/r1/1.log", 9, 100) == b"line two\n"
        assert s3_bucket.object_keys() == []  # nothing uploaded while the attempt runs

    await store.commit_staged("logs/r1/1.log")
    assert not path.exists()
    assert s3_bucket.object_keys() == ["blobs/logs/r1/1.log"]
    assert await store.read_range("logs/r1/1.log", 5, 8) == b"one\nline"
    assert await store.get("logs/r1/1.log") == b"line one\nline two\n"
    await store.commit_staged("logs/r1/1.log")  # a second end of the same attempt: no-op
    assert await store.get("logs/r1/1.log") == b"line one\nline two\n"


async def test_staged_blob_is_visible_before_commit(s3_bucket: Bucket, tmp_path: Path) -> None:
    store = s3_store(s3_bucket, tmp_path)
    store.staging_path("registrations/v1.log").write_bytes(b"registering\n")
    assert await store.exists("registrations/v1.log")
    assert await store.get("registrations/v1.log") == b"registering\n"


async def test_commit_without_a_staged_file_is_a_no_op(s3_bucket: Bucket, tmp_path: Path) -> None:
    store = s3_store(s3_bucket, tmp_path)
    await store.commit_staged("logs/r1/1.log")
    assert s3_bucket.object_keys() == []


async def test_presigned_url_is_fetchable(s3_bucket: Bucket, tmp_path: Path) -> None:
    store = s3_store(s3_bucket, tmp_path, presign=60)
    await store.put("runs/r1/output.json", b'{"big":true}')
    url = store.presigned_url("runs/r1/output.json")
    assert url is not None
    assert "Expires=60" in url or "X-Amz-Expires=60" in url
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
        assert response.status_code == 200
        assert response.content == b'{"big":true}'
        unsigned = await client.get(url.split("?")[0])
        assert unsigned.status_code == 403


@pytest.mark.slow
async def test_large_body_is_uploaded_in_parts(s3_bucket: Bucket, tmp_path: Path) -> None:
    store = s3_store(s3_bucket, tmp_path)
    data = os.urandom(20 * 1024 * 1024)
    await store.put("runs/r1/output.json", data)
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="blobs/runs/r1/output.json")
    # a multipart upload's ETag is `<md5 of the part md5s>-<number of parts>`
    assert head["ETag"].strip('"').endswith("-3")
    assert await store.get("runs/r1/output.json") == data
    tail = await store.read_range("runs/r1/output.json", len(data) - 1000, 4096)
    assert tail == data[-1000:]

    store.staging_path("logs/r1/1.log").write_bytes(data)
    await store.commit_staged("logs/r1/1.log")
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="blobs/logs/r1/1.log")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")


async def test_check_passes_for_an_existing_bucket(s3_bucket: Bucket, tmp_path: Path) -> None:
    store = s3_store(s3_bucket, tmp_path / "spool")
    await store.check()
    assert (tmp_path / "spool").is_dir()


async def test_check_names_a_missing_bucket(s3_endpoint: str, tmp_path: Path) -> None:
    options = S3Options(endpoint_url=s3_endpoint, region=REGION)
    store = S3BlobStore(S3Location("no-such-bucket", ""), tmp_path, options, make_client(options))
    with pytest.raises(BlobStoreUnavailable) as caught:
        await store.check()
    assert "'no-such-bucket'" in str(caught.value)
    assert s3_endpoint in str(caught.value)


async def test_check_names_an_unreachable_endpoint(tmp_path: Path) -> None:
    # a port nothing listens on: the connection is refused at once
    options = S3Options(endpoint_url="http://127.0.0.1:9", region=REGION)
    store = S3BlobStore(S3Location("bucket", ""), tmp_path, options, make_client(options))
    with pytest.raises(BlobStoreUnavailable, match=r"'bucket' at http://127\.0\.0\.1:9"):
        await store.check()


async def test_s3_failures_name_the_blob_and_the_bucket(s3_endpoint: str, tmp_path: Path) -> None:
    options = S3Options(endpoint_url=s3_endpoint, region=REGION)
    store = S3BlobStore(S3Location("gone-bucket", ""), tmp_path, options, make_client(options))
    with pytest.raises(BlobStoreUnavailable) as caught:
        await store.put("runs/trn-1/output.json", b"{}")
    assert str(caught.value) == (
        f"S3 upload of runs/trn-1/output.json in bucket 'gone-bucket' at {s3_endpoint} failed: "
        "NoSuchBucket The specified bucket does not exist"
    )
    store.staging_path("logs/trn-1/0.log").write_bytes(b"log")
    with pytest.raises(BlobStoreUnavailable, match=r"upload of staged logs/trn-1/0\.log"):
        await store.commit_staged("logs/trn-1/0.log")
    assert store.staging_path("logs/trn-1/0.log").read_bytes() == b"log"  # kept for a retry
