"""Settings group of the process executors' sandbox: `CONVEYOR_SANDBOX__*` (docs/configuration.md).

Whether the sandbox is on at all is `CONVEYOR_EXECUTOR__SANDBOX` (`on`, the default, or `off`).
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator


def parse_mount(text: str) -> tuple[str, str, bool]:
    """`SRC:DST[:ro|rw]` → (source, destination, writable); read-only unless `:rw`.

    Raises:
        ValueError: Not of that form, or a path that is not absolute.
    """
    parts = text.split(":")
    if len(parts) == 2:
        parts.append("ro")
    if len(parts) != 3 or parts[2] not in ("ro", "rw"):
        raise ValueError(f"{text!r}: a mount is SRC:DST, SRC:DST:ro or SRC:DST:rw")
    source, destination, access = parts
    if not source.startswith("/") or not destination.startswith("/"):
        raise ValueError(f"{text!r}: both paths of a mount must be absolute")
    if destination == "/" or destination.rstrip("/") in ("/proc", "/dev", "/tmp"):
        raise ValueError(f"{text!r}: {destination} belongs to the sandbox itself")
    return source, destination, access == "rw"


class SandboxSettings(BaseModel):
    # as root, each zygote, spawned instance and build runs as its own uid from this range
    uid_base: int = Field(default=200_000, ge=1000)
    uid_count: int = Field(default=4096, ge=1)
    pids_max: int = Field(default=512, ge=8)  # processes and threads of one attempt
    tmp_mb: int = Field(default=256, ge=1)  # each instance's private /tmp (counts as its memory)
    network: bool = True  # False: an instance has no network at all (a namespace of its own)
    mounts: tuple[str, ...] = ()  # extra host paths for every instance: `SRC:DST[:ro|rw]`
    # each build step that runs a tenant's code (dependency installs, the build command)
    build_cpu: float = Field(default=2.0, gt=0)
    build_memory_mb: int = Field(default=4096, ge=64)

    @field_validator("mounts")
    @classmethod
    def _valid_mounts(cls, mounts: tuple[str, ...]) -> tuple[str, ...]:
        for mount in mounts:
            parse_mount(mount)
        return mounts
