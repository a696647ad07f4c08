"""Settings group of the request guard: `CONVEYOR_SECURITY__*` (docs/configuration.md)."""

from __future__ import annotations

from pydantic import BaseModel


class SecuritySettings(BaseModel):
    # Host header values accepted besides the bound address (`localhost`, `127.0.0.1`, `[::1]` on
    # the served port): `name` matches any port, `name:port` that port only. Checked on every
    # request in `conveyor dev`; in production only when this list is not empty.
    allowed_hosts: tuple[str, ...] = ()
    # Browser origins (`https://ops.example.com`) that may send state-changing requests besides
    # the server's own.
    allowed_origins: tuple[str, ...] = ()
