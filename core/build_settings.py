"""Settings groups of the build pipeline: `CONVEYOR_BUILDS__*` and `CONVEYOR_GITHUB__*`."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import BaseModel, Field, field_validator

SECRETS_KEY_SETTING = "CONVEYOR_BUILDS__SECRETS_KEY"


class BuildSettings(BaseModel):
    builder: str = "venv"  # "venv" (embedded) or "buildkit" (container image)
    # Fernet keys (urlsafe base64 of 32 bytes) for workflow env vars, comma-separated, newest
    # first: the first encrypts, all decrypt. None: one key kept in the data dir.
    secrets_key: str | None = None
    clone_timeout_seconds: float = Field(default=300.0, gt=0)
    max_checkout_bytes: int = Field(default=500 * 1024 * 1024, gt=0)
    submodules: bool = False
    build_timeout_seconds: float = Field(default=1800.0, gt=0)
    python: str | None = None  # interpreter that creates virtualenvs; None: the server's own
    base_image: str = "python:3.11-slim"
    registry: str | None = None  # e.g. "127.0.0.1:5000/conveyor": where images are pushed
    cache: str = "inline"  # "inline" (cache in the image) or "registry" (a separate cache ref)
    log_tail_chars: int = Field(default=3000, gt=0)
    parallel_builds: int = Field(default=2, gt=0)

    @field_validator("secrets_key")
    @classmethod
    def _keys_are_fernet_keys(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # unset, as an empty variable has always meant
        secrets_keys(value)
        return value


def secrets_keys(value: str) -> list[bytes]:
    """The keys of a `secrets_key` value, newest first; ValueError naming a malformed one."""
    keys = [part.strip().encode() for part in value.split(",") if part.strip()]
    if not keys:
        raise ValueError(f"{SECRETS_KEY_SETTING} holds no key")
    for number, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(
                f"key {number} of {SECRETS_KEY_SETTING} is not a Fernet key "
                "(urlsafe base64 of 32 bytes)"
            ) from None
    return keys


class GitHubSettings(BaseModel):
    app_id: int | None = None
    private_key: str | None = None  # PEM text
    private_key_path: Path | None = None
    webhook_secret: str | None = None
    api_url: str = "https://api.github.com"
    check_run_name: str = "Conveyor"
    max_webhook_bytes: int = Field(default=25 * 1024 * 1024, gt=0)

    def private_key_pem(self) -> str | None:
        if self.private_key:
            return self.private_key
        if self.private_key_path is not None:
            return self.private_key_path.read_text()
        return None
