"""Errors raised by the control plane's services; each maps to one HTTP status.

ServiceError
├── InvalidRequest        400  malformed body or parameter
├── Unauthorized          401  missing, unknown, revoked or expired API key
├── Forbidden             403  a valid key without the scope the operation needs (admin)
├── NotFound              404  unknown run, task, workflow, version
├── Conflict              409  the state forbids it (e.g. a cancelled parent's new child)
├── PayloadTooLarge       413  input over the configured limit
├── InvalidInput          422  well-formed but unacceptable (e.g. bad task options)
└── RateLimited           429  too many requests from one key; `retry_after` seconds
"""

from __future__ import annotations


class ServiceError(Exception):
    """Root of the control plane's errors: a message meant for the caller and a stable code."""

    http_status = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ServiceError):
    http_status = 400
    code = "invalid_request"


class Unauthorized(ServiceError):
    http_status = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    http_status = 403
    code = "forbidden"


class NotFound(ServiceError):
    http_status = 404
    code = "not_found"


class Conflict(ServiceError):
    http_status = 409
    code = "conflict"


class PayloadTooLarge(ServiceError):
    http_status = 413
    code = "payload_too_large"


class InvalidInput(ServiceError):
    http_status = 422
    code = "invalid_input"


class RateLimited(ServiceError):
    http_status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
