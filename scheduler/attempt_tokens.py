"""Attempt-scoped tokens: what a remote instance's relay proves it speaks for one attempt."""

from __future__ import annotations

import hashlib
import hmac


def attempt_token(secret: str, attempt_id: str) -> str:
    """HMAC-SHA256 of the attempt id: only the holder of `secret` can mint one."""
    if not secret:
        raise ValueError(
            "no attempt-token secret configured (CONVEYOR_NOMAD__ATTEMPT_TOKEN_SECRET)"
        )
    return hmac.new(secret.encode(), attempt_id.encode(), hashlib.sha256).hexdigest()


def token_matches(secret: str, attempt_id: str, token: str) -> bool:
    """Constant-time check; always False while no secret is configured."""
    if not secret or not token:
        return False
    return hmac.compare_digest(attempt_token(secret, attempt_id), token)
