"""Workflow env vars encrypted at rest (Fernet), with keys from settings or the data dir.

`CONVEYOR_BUILDS__SECRETS_KEY` may list several keys, newest first and comma-separated: the
first encrypts, every one decrypts (MultiFernet), so a key is rotated by putting the new one
in front and dropping the old one once nothing sealed with it is left.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.build_settings import SECRETS_KEY_SETTING as SETTING
from core.build_settings import secrets_keys
from core.data_dir import make_private_dirs
from core.errors import Conflict
from core.settings import Settings

_KEY_FILE = "secrets.key"


class SecretsUnreadable(Conflict):
    """Stored secrets open with none of the configured keys (was the key changed?)."""

    code = "secrets_unreadable"

    def __init__(self, owner: str) -> None:
        super().__init__(
            f"the env vars of {owner} cannot be decrypted with any key in {SETTING} (or, when "
            "it is unset, the data dir's secrets.key): was the key changed? To rotate keys, "
            f"list the new one first and keep the old one after it: {SETTING}=NEW,OLD"
        )
        self.owner = owner


class SecretBox:
    """Encrypts a name → value mapping into one opaque token and back."""

    def __init__(self, *keys: bytes) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.builds.secrets_key:
            return cls(*secrets_keys(settings.builds.secrets_key))
        return cls(_key_from_file(settings.data_dir / _KEY_FILE))

    def seal(self, values: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode()

    def open(self, token: str | None, owner: str = "a workflow") -> dict[str, str]:
        """The values sealed in `token`; SecretsUnreadable (a 409) names `owner` if no key fits."""
        if not token:
            return {}
        try:
            data = self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise SecretsUnreadable(owner) from None
        values = json.loads(data)
        return {str(k): str(v) for k, v in values.items()}


def _key_from_file(path: Path) -> bytes:
    """The data dir's key, created once with mode 0600 (O_EXCL: two processes agree on one)."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    make_private_dirs(path.parent)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
