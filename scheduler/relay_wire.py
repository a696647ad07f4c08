"""The relay envelope: one instance request or answer as JSON, between sidecar and control plane.

The sidecar sends `POST /internal/v1/instances/{attempt_id}` with
`{"method", "path", "query": {name: [values]}, "body_b64", "user_agent"?}` and gets back 200
`{"status", "body_b64"}` carrying the agent's answer. Any other status is the relay's own
(`{"message", "code"}`), never the agent's, so the sidecar can tell the two apart.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from scheduler.uds_http import Request, Response

RELAY_PATH = "/internal/v1/instances/{attempt_id}"
METHODS = frozenset({"GET", "POST"})
_REQUEST_KEYS = frozenset({"method", "path", "query", "body_b64"})
# a sidecar older than the key sends none: its workers count as Python ones
_OPTIONAL_REQUEST_KEYS = frozenset({"user_agent"})
_RESPONSE_KEYS = frozenset({"status", "body_b64"})


class BadEnvelope(ValueError):
    """The envelope is not what this module writes."""


def relay_url(control_plane_url: str, attempt_id: str) -> str:
    return control_plane_url.rstrip("/") + RELAY_PATH.format(attempt_id=attempt_id)


def encode_request(request: Request) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "body_b64": base64.b64encode(request.body).decode(),
        "user_agent": request.user_agent,
    }


def decode_request(envelope: Any) -> Request:
    if not isinstance(envelope, dict) or not (
        _REQUEST_KEYS <= set(envelope) <= _REQUEST_KEYS | _OPTIONAL_REQUEST_KEYS
    ):
        raise BadEnvelope(
            f"expected an object with {sorted(_REQUEST_KEYS)} and optionally "
            f"{sorted(_OPTIONAL_REQUEST_KEYS)}"
        )
    method, path, query = envelope["method"], envelope["path"], envelope["query"]
    user_agent = envelope.get("user_agent", "")
    if not isinstance(user_agent, str):
        raise BadEnvelope("user_agent must be a string")
    if method not in METHODS:
        raise BadEnvelope(f"method must be one of {sorted(METHODS)}")
    if not isinstance(path, str) or not path.startswith("/"):
        raise BadEnvelope("path must be a string starting with '/'")
    if not isinstance(query, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(i, str) for i in v)
        for k, v in query.items()
    ):
        raise BadEnvelope("query must map names to lists of strings")
    return Request(method, path, query, _unb64(envelope["body_b64"]), user_agent=user_agent)


def encode_response(response: Response) -> dict[str, Any]:
    return {"status": response.status, "body_b64": base64.b64encode(response.body).decode()}


def decode_response(envelope: Any) -> Response:
    if not isinstance(envelope, dict) or set(envelope) != _RESPONSE_KEYS:
        raise BadEnvelope(f"expected an object with exactly {sorted(_RESPONSE_KEYS)}")
    status = envelope["status"]
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise BadEnvelope("status must be an HTTP status code")
    return Response(status, _unb64(envelope["body_b64"]))


def _unb64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise BadEnvelope("body_b64 must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise BadEnvelope(f"body_b64 is not base64: {exc}") from None
