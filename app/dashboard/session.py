"""Signed session cookies: who signed in (a workspace, with which key) and the CSRF token."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from core.data_dir import make_private_dirs

COOKIE_NAME = "conveyor_session"
_SALT = "conveyor.dashboard.session"
_SECRET_FILE = "dashboard-session.key"


@dataclass(frozen=True)
class Session:
    """`workspace` is None until the visitor signs in; the CSRF token lives as long as it."""

    workspace: str | None
    csrf: str
    key_id: str | None = None  # the key signed in with: revoking it ends the session

    @classmethod
    def fresh(cls, workspace: str | None, key_id: str | None = None) -> Session:
        # A new token on every sign-in, so a token seen before it is worthless after.
        return cls(workspace, secrets.token_urlsafe(24), key_id)


class SessionCodec:
    """Signs and checks session cookies; a tampered, foreign or expired cookie reads as None."""

    def __init__(
        self, secret: str, max_age_seconds: int, *, clock: Callable[[], float] = time.time
    ) -> None:
        class Signer(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT, signer=Signer)
        self.max_age_seconds = max_age_seconds

    def dumps(self, session: Session) -> str:
        return self._serializer.dumps(
            {"ws": session.workspace, "csrf": session.csrf, "key": session.key_id}
        )

    def loads(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            raw = self._serializer.loads(cookie, max_age=self.max_age_seconds)
        except BadSignature:
            return None
        if not isinstance(raw, dict):
            return None
        workspace, csrf, key_id = raw.get("ws"), raw.get("csrf"), raw.get("key")
        if not isinstance(csrf, str) or not all(
            value is None or isinstance(value, str) for value in (workspace, key_id)
        ):
            return None
        return Session(workspace, csrf, key_id)


def load_or_create_secret(data_dir: Path) -> str:
    """The data dir's session secret, created on first use (0600) so restarts keep sessions."""
    path = data_dir / _SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    make_private_dirs(data_dir)
    # Written aside then hard-linked into place: two servers starting together never read a
    # half-written file, and the first link wins.
    draft = data_dir / f".{_SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as sink:
        sink.write(secrets.token_urlsafe(48))
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()
