"""`POST /internal/v1/instances/{attempt_id}`: instance requests relayed by `conveyor agent`.

Only the attempt's own token opens it (HMAC of the attempt id, scheduler/attempt_tokens.py): an
API key is not accepted and there is no anonymous access, even in `conveyor dev`.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.body import read_json_body
from app.api.responses import JSONResponse, error_response
from app.api.state import app_state
from core.errors import InvalidRequest, Unauthorized
from scheduler.attempt_tokens import token_matches
from scheduler.relay_wire import RELAY_PATH, BadEnvelope, decode_request, encode_response

logger = logging.getLogger("conveyor.api.relay")

# the largest instance request is an output callback: base64 of the output, base64 again here
_ENVELOPE_FACTOR = 1.4 * 1.4
_ENVELOPE_SLACK = 64 * 1024


def _check_token(request: Request, secret: str, attempt_id: str) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if not secret:
        raise Unauthorized("the instance relay is off: no attempt-token secret is configured")
    if scheme.lower() != "bearer" or not token_matches(secret, attempt_id, token.strip()):
        raise Unauthorized(f"not a valid token for attempt {attempt_id}")


async def relay(request: Request) -> Response:
    state = app_state(request)
    settings = state.runtime.settings
    attempt_id = request.path_params["attempt_id"]
    _check_token(request, settings.nomad.attempt_token_secret, attempt_id)
    limit = int(settings.limits.max_output_bytes * _ENVELOPE_FACTOR) + _ENVELOPE_SLACK
    try:
        relayed = decode_request(await read_json_body(request, limit))
    except BadEnvelope as exc:
        raise InvalidRequest(f"relay envelope: {exc}") from None
    answer = await state.runtime.scheduler.agent.handle(attempt_id, relayed)
    if answer is None:
        # after a control-plane restart the attempt is re-attached shortly: the sidecar retries
        response = error_response(
            503, "instance_not_attached", f"attempt {attempt_id} has no open instance here"
        )
        response.headers["Retry-After"] = "1"
        return response
    if answer.status >= 500:
        logger.warning(
            "attempt %s: %s %s answered %s", attempt_id, relayed.method, relayed.path, answer.status
        )
    return JSONResponse(encode_response(answer))


routes = [Route(RELAY_PATH, relay, methods=["POST"])]
