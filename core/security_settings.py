"""Settings group of the request guard: `CONVEYOR_SECURITY__*` (docs/configuration.md)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SecuritySettings(BaseModel):
    # Host header values accepted besides the bound address (`localhost`, `127.0.0.1`, `[::1]` on
    # the served port): `name` matches any port, `name:port` that port only. Checked on every
    # request in `conveyor dev`; in production only when this list is not empty.
    allowed_hosts: tuple[str, ...] = ()
    # Browser origins (`https://ops.example.com`) that may send state-changing requests besides
    # the server's own.
    allowed_origins: tuple[str, ...] = ()


class RateLimitSettings(BaseModel):
    """Token buckets per API key (per server process): `rate` a second, up to `burst` at once.

    The defaults are far above what one client of the benchmarks or tests sends, so they only
    stop a runaway or hostile client. A rate of 0 turns that limit off.
    """

    task_runs_per_second: float = Field(default=2000.0, ge=0)  # POST /v1/task-runs, per key
    task_runs_burst: int = Field(default=10_000, ge=1)
    # POST /github/webhook, checked after the signature: signed deliveries share one bucket,
    # requests whose signature does not verify another, of the same size
    webhook_per_second: float = Field(default=50.0, ge=0)
    webhook_burst: int = Field(default=500, ge=1)
