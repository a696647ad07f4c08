"""A real engine whose blobs live in S3 (moto over HTTP): big payloads and every attempt's log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from core.blobs.base import BlobStoreUnavailable, attempt_log_key, run_input_key, run_output_key
from core.db.models import Attempt
from core.domain import AttemptState, RunInfo, RunStatus, VersionStatus
from core.settings import BlobSettings, LimitSettings, Settings
from scheduler.runtime import Runtime
from tests.integration.engine_fixtures import WS, copy_workflow, executor_settings, run_to_end
from tests.integration.s3_fixtures import REGION, Bucket, s3_bucket, s3_endpoint

pytestmark = pytest.mark.anyio
__all__ = ["s3_bucket", "s3_endpoint"]  # re-exported: pytest finds fixtures by module name

PREFIX = "conveyor/test"


def _settings(tmp_path: Path, bucket: Bucket) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        blobs=BlobSettings(url=bucket.url(PREFIX), endpoint_url=bucket.endpoint_url, region=REGION),
        limits=LimitSettings(min_timeout_seconds=1),
        executor=executor_settings(kill_grace_seconds=1.0),
    )


@asynccontextmanager
async def _s3_engine(tmp_path: Path, bucket: Bucket) -> AsyncIterator[Runtime]:
    runtime = await Runtime.open(_settings(tmp_path, bucket))
    try:
        version = await runtime.register_workflow(
            copy_workflow("blobs", tmp_path), slug="blobs", start_command="conveyor-worker main:app"
        )
        assert version.status is VersionStatus.READY, version.message
        await runtime.start()
        yield runtime
    finally:
        await runtime.close()


async def _all_attempts_ended(runtime: Runtime, run_id: str, timeout: float = 30) -> RunInfo:
    """The run's record once every attempt's instance is gone (metered, its log committed),
    which can trail the run's own terminal status by a moment."""
    # polls the attempts table alone: each get_run would fetch the 10 MB output again
    query = select(Attempt.state, Attempt.compute_seconds).where(Attempt.run_id == run_id)
    async with asyncio.timeout(timeout):
        while True:
            async with runtime.store.sessions() as session:
                rows = (await session.execute(query)).all()
            if all(
                state == AttemptState.ENDED.value and seconds is not None for state, seconds in rows
            ):
                return await runtime.service.get_run(WS, run_id)
            await asyncio.sleep(0.05)


async def _whole_log(runtime: Runtime, run_id: str, attempt: int) -> bytes:
    data, offset = b"", 0
    while True:
        chunk = await runtime.service.read_log(WS, run_id, attempt, offset)
        if not chunk.data:
            return data
        data, offset = data + chunk.data, chunk.next_offset


@pytest.mark.slow
async def test_big_output_is_stored_in_s3(tmp_path: Path, s3_bucket: Bucket) -> None:
    padding = "p" * 100_000  # over inline_bytes: the input is a blob too
    async with _s3_engine(tmp_path, s3_bucket) as runtime:
        done = await run_to_end(runtime, "big_output", [10, padding])
        assert done.status is RunStatus.SUCCEEDED, done.error
        ended = await _all_attempts_ended(runtime, done.id)

        keys = s3_bucket.object_keys()
        assert f"{PREFIX}/{run_output_key(done.id)}" in keys
        assert f"{PREFIX}/{run_input_key(done.id)}" in keys
        assert any(key.startswith(f"{PREFIX}/registrations/") for key in keys)
        (attempt,) = ended.attempts
        assert f"{PREFIX}/{attempt_log_key(done.id, attempt.number)}" in keys
        head = s3_bucket.client.head_object(
            Bucket=s3_bucket.name, Key=f"{PREFIX}/{run_output_key(done.id)}"
        )
        assert head["ContentLength"] > 10 * 1024 * 1024

        assert ended.input == [10, padding]
        assert ended.results is not None
        (output,) = ended.results
        assert isinstance(output, dict)
        assert output["size"] == 10 * 1024 * 1024
        body = output["body"]
        assert isinstance(body, str)
        assert len(body) == 10 * 1024 * 1024
        assert body[:26] == "abcdefghijklmnopqrstuvwxyz"
        assert body == "".join(chr(ord("a") + i % 26) for i in range(1024)) * 10 * 1024

        log = await _whole_log(runtime, done.id, attempt.number)
        assert b"making 10 MB (input padding 100000 chars)" in log
        assert b"made it" in log
    assert not list((tmp_path / "data" / "spool").rglob("*.log"))


@pytest.mark.slow
async def test_every_attempts_log_is_committed_to_s3(
    tmp_path: Path, s3_bucket: Bucket, scratch: Path
) -> None:
    async with _s3_engine(tmp_path, s3_bucket) as runtime:
        done = await run_to_end(runtime, "fails_once", ["blue"])
        assert done.status is RunStatus.SUCCEEDED, done.error
        ended = await _all_attempts_ended(runtime, done.id)
        numbers = sorted(attempt.number for attempt in ended.attempts)
        assert len(numbers) == 2
        first_number, second_number = numbers
        assert done.results == [f"blue: done on attempt {second_number}"]
        assert (scratch / "failed-blue").exists(), "the first attempt left its marker"

        keys = s3_bucket.object_keys()
        for number in numbers:
            assert f"{PREFIX}/{attempt_log_key(done.id, number)}" in keys
            assert not (tmp_path / "data" / "spool" / attempt_log_key(done.id, number)).exists()

        first = (await _whole_log(runtime, done.id, first_number)).decode()
        assert f"blue: attempt {first_number} starts" in first
        assert f"blue: attempt {first_number} on stderr" in first
        assert f"RuntimeError: blue: attempt {first_number} fails on purpose" in first
        second = (await _whole_log(runtime, done.id, second_number)).decode()
        assert f"blue: attempt {second_number} starts" in second
        assert "fails on purpose" not in second

        stored = s3_bucket.client.get_object(
            Bucket=s3_bucket.name, Key=f"{PREFIX}/{attempt_log_key(done.id, first_number)}"
        )["Body"].read()
        assert stored == first.encode()
        tail = await runtime.service.read_log(WS, done.id, first_number, len(stored) - 20)
        assert tail.data == stored[-20:]
        assert tail.finished


async def test_engine_refuses_to_open_on_a_missing_bucket(tmp_path: Path, s3_endpoint: str) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        blobs=BlobSettings(url="s3://absent-bucket/x", endpoint_url=s3_endpoint, region=REGION),
    )
    with pytest.raises(BlobStoreUnavailable, match=r"bucket 'absent-bucket' at http://127"):
        await Runtime.open(settings)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3:///prefix", "names no bucket"),
        ("s3://", "names no bucket"),
        ("s3://bucket/a b", "unusable prefix"),
        ("gs://bucket", "unsupported blob store URL"),
    ],
)
async def test_engine_refuses_bad_blob_urls(tmp_path: Path, url: str, message: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", blobs=BlobSettings(url=url))
    with pytest.raises(ValueError, match=message):
        await Runtime.open(settings)
