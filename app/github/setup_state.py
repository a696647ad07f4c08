"""The `state` of the GitHub App's install link: which workspace asked, and when, signed.

GitHub sends the browser back to the App's setup URL with `installation_id` and the `state` the
install link carried. The installation id alone proves nothing (anyone can type one), so the
installation is connected only to the workspace the signed state names, and only if GitHub says
the installation was made after that state was issued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from core.errors import InvalidRequest

_CONTEXT = b"conveyor github setup state v1"


@dataclass(frozen=True)
class SetupState:
    workspace_id: str
    issued_at: datetime


def _key(webhook_secret: str) -> bytes:
    # its own key, derived from the webhook secret: a state is never a valid webhook signature
    return hmac.new(webhook_secret.encode(), _CONTEXT, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_state(webhook_secret: str, workspace_id: str, now: datetime) -> str:
    claims = {"w": workspace_id, "t": int(now.timestamp()), "n": secrets.token_urlsafe(9)}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(_key(webhook_secret), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def read_state(webhook_secret: str, state: str, now: datetime, max_age_seconds: int) -> SetupState:
    """The state's workspace and issue time; InvalidRequest if forged, malformed or expired."""
    body, _, mac = state.partition(".")
    expected = hmac.new(_key(webhook_secret), body.encode(), hashlib.sha256).digest()
    try:
        valid = hmac.compare_digest(_unb64(mac), expected)
        claims = json.loads(_unb64(body)) if valid else None
    except ValueError:
        valid, claims = False, None
    if not valid or not isinstance(claims, dict):
        raise InvalidRequest("state is not one this server issued")
    workspace, issued = claims.get("w"), claims.get("t")
    if not isinstance(workspace, str) or not isinstance(issued, int):
        raise InvalidRequest("state is not one this server issued")
    age = now.timestamp() - issued
    if age > max_age_seconds or age < -60:
        raise InvalidRequest(
            f"state expired: the install link is good for {max_age_seconds} s; ask for a new one"
        )
    return SetupState(workspace, datetime.fromtimestamp(issued, UTC))
