"""Token buckets per key: a burst, then one a `1/rate`; 429 with Retry-After past them."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import pytest

from app.api.rate_limits import TokenBuckets
from core.build_settings import GitHubSettings
from core.security_settings import RateLimitSettings
from core.settings import Settings
from tests.unit.app.app_fakes import WS, FakeRuntime, fake_app


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0  # another key has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0
    clock.now += 60  # refills to the burst, not beyond
    assert [buckets.take("a") for _ in range(4)][-1] > 0


def test_a_zero_rate_is_no_limit() -> None:
    buckets = TokenBuckets(rate=0, burst=1)
    assert all(buckets.take("a") == 0 for _ in range(100))


def test_idle_buckets_are_dropped_past_the_prune_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.api.rate_limits._PRUNE_AT", 3)
    clock = Clock()
    buckets = TokenBuckets(rate=1.0, burst=1, clock=clock)
    for key in "abc":
        buckets.take(key)
    clock.now += 10
    buckets.take("d")
    assert set(buckets._buckets) == {"d"}


def limited_runtime() -> FakeRuntime:
    return FakeRuntime(
        settings=Settings(
            rate_limits=RateLimitSettings(
                task_runs_per_second=0.5, task_runs_burst=2, webhook_per_second=0.5, webhook_burst=1
            ),
            github=GitHubSettings(webhook_secret="s3cret"),
        )
    )


def http(runtime: FakeRuntime, anonymous: str | None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=fake_app(runtime, anonymous), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8120")


@pytest.mark.anyio
@pytest.mark.parametrize("anonymous", [WS, None])
async def test_starting_runs_is_limited_per_key(anonymous: str | None) -> None:
    runtime = limited_runtime()
    runtime.service.runs.clear()
    headers = {} if anonymous else {"authorization": "Bearer cvy_good"}
    body = {"task": "hello/square", "input": [1]}
    async with http(runtime, anonymous) as client:
        statuses = [
            (await client.post("/v1/task-runs", json=body, headers=headers)).status_code
            for _ in range(3)
        ]
        assert statuses == [202, 202, 429]
        limited = await client.post("/v1/task-runs", json=body, headers=headers)
        assert limited.headers["retry-after"] == "2"
        assert limited.json()["code"] == "rate_limited"
        assert "CONVEYOR_RATE_LIMITS__TASK_RUNS_PER_SECOND" in limited.json()["message"]
        # reads are not limited
        assert (await client.get("/v1/task-runs", headers=headers)).status_code == 200
    assert len(runtime.service.runs) == 2


@pytest.mark.anyio
async def test_another_key_has_its_own_bucket() -> None:
    runtime = limited_runtime()
    runtime.keys.keys["cvy_other"] = "wsp-key"
    body = {"task": "hello/square", "input": [1]}
    async with http(runtime, None) as client:
        for _ in range(2):
            await client.post(
                "/v1/task-runs", json=body, headers={"authorization": "Bearer cvy_good"}
            )
        other = await client.post(
            "/v1/task-runs", json=body, headers={"authorization": "Bearer cvy_other"}
        )
        assert other.status_code == 202


@pytest.mark.anyio
async def test_unsigned_webhook_requests_cannot_use_up_the_signed_deliveries_bucket() -> None:
    runtime = limited_runtime()  # webhooks: a burst of 1, then one every 2 s
    body = b'{"zen": "x", "hook_id": 1}'
    signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    # no X-GitHub-Event: a signed request that passes the bucket stops right after it, at 400
    # (this fake runtime has no database to record a delivery in)
    signed = {"x-hub-signature-256": signature, "content-type": "application/json"}
    wrong = {**signed, "x-hub-signature-256": "sha256=" + "0" * 64}
    async with http(runtime, None) as client:
        first = await client.post("/github/webhook", content=body, headers=wrong)
        assert first.status_code == 401  # checked first: a wrong signature is refused as such
        second = await client.post("/github/webhook", content=body, headers={})
        assert second.status_code == 429 and second.headers["retry-after"] == "2"
        assert "unsigned webhook requests" in second.json()["message"]
        genuine = await client.post("/github/webhook", content=body, headers=signed)
        assert genuine.status_code == 400, genuine.text  # past its own, untouched, bucket
        assert "X-GitHub-Event" in genuine.json()["message"]
        again = await client.post("/github/webhook", content=body, headers=signed)
        assert again.status_code == 429 and again.headers["retry-after"] == "2"
        assert "webhook deliveries" in again.json()["message"]
