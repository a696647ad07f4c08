"""Workflow env vars encrypted at rest (Fernet), with the key from settings or the data dir."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from core.settings import Settings

_KEY_FILE = "secrets.key"


class SecretsUnreadable(RuntimeError):
    """Stored secrets cannot be decrypted with the configured key (was the key changed?)."""


class SecretBox:
    """Encrypts a name → value mapping into one opaque token and back."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.builds.secrets_key:
            return cls(settings.builds.secrets_key.encode())
        return cls(_key_from_file(settings.data_dir / _KEY_FILE))

    def seal(self, values: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode()

    def open(self, token: str | None) -> dict[str, str]:
        if not token:
            return {}
        try:
            data = self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise SecretsUnreadable("stored env vars cannot be decrypted with this key") from None
        values = json.loads(data)
        return {str(k): str(v) for k, v in values.items()}


def _key_from_file(path: Path) -> bytes:
    """The data dir's key, created once with mode 0600 (O_EXCL: two processes agree on one)."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
