"""Per-key token buckets: `POST /v1/task-runs` and the GitHub webhook answer 429 past them.

Each bucket holds up to `burst` tokens and gains `rate` a second; a request takes one. The
buckets live in this server process (several servers each count their own share).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from app.api.state import app_state
from core.errors import RateLimited
from core.security_settings import RateLimitSettings

# past this many buckets, full ones (idle keys) are dropped: memory stays bounded
_PRUNE_AT = 10_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        """0 when `key` may go on (a token is taken), else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _PRUNE_AT:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _prune(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.at) * self.rate >= self.burst:
                del self._buckets[key]


@dataclass(frozen=True)
class RateLimits:
    task_runs: TokenBuckets
    webhook: TokenBuckets

    @classmethod
    def from_settings(cls, settings: RateLimitSettings) -> RateLimits:
        return cls(
            TokenBuckets(settings.task_runs_per_second, settings.task_runs_burst),
            TokenBuckets(settings.webhook_per_second, settings.webhook_burst),
        )


def rate_limits_of(request: Request) -> RateLimits:
    """This application's buckets, made on first use."""
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    if limits is None:
        limits = RateLimits.from_settings(app_state(request).runtime.settings.rate_limits)
        request.app.state.rate_limits = limits
    return limits


def enforce(buckets: TokenBuckets, key: str, what: str, setting: str) -> None:
    """RateLimited (429, `Retry-After`) when `key` has no token left."""
    wait = buckets.take(key)
    if wait:
        raise RateLimited(
            f"too many {what}: at most {buckets.rate:g} a second, {buckets.burst} at once "
            f"({setting}); retry in {math.ceil(wait)} s",
            retry_after=math.ceil(wait),
        )
