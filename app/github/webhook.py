"""`POST /github/webhook`: signature first, then rate limits, de-duplication, the event.

Requests whose signature does not verify count in a bucket of their own, so however many of
them arrive, correctly signed deliveries keep theirs.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.rate_limits import enforce, rate_limits_of
from app.api.responses import JSONResponse, error_response
from app.api.state import app_state
from app.builds import build_services_of
from app.github import events
from app.github.signature import signature_valid
from core.db.models import WebhookDelivery
from core.errors import Conflict, InvalidRequest, NotFound, PayloadTooLarge

logger = logging.getLogger(__name__)

SIGNED_BUCKET = "github-webhook"
UNSIGNED_BUCKET = "github-webhook-unsigned"
RATE_SETTING = "CONVEYOR_RATE_LIMITS__WEBHOOK_PER_SECOND"


async def _raw_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"webhook body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def receive(request: Request) -> Response:
    runtime = app_state(request).runtime
    settings = runtime.settings.github
    if not settings.webhook_secret:
        raise NotFound("GitHub webhooks are not configured (CONVEYOR_GITHUB__WEBHOOK_SECRET)")
    body = await _raw_body(request, settings.max_webhook_bytes)
    limits = rate_limits_of(request).webhook
    if not signature_valid(
        settings.webhook_secret, body, request.headers.get("x-hub-signature-256")
    ):
        # Their own bucket: a flood of unsigned requests cannot use up the signed deliveries'.
        enforce(limits, UNSIGNED_BUCKET, "unsigned webhook requests", RATE_SETTING)
        # Nothing about the request is trusted, logged in detail or stored before this check.
        logger.warning("webhook refused: missing or wrong X-Hub-Signature-256")
        return error_response(401, "unauthorized", "missing or invalid X-Hub-Signature-256")
    enforce(limits, SIGNED_BUCKET, "webhook deliveries", RATE_SETTING)
    event = request.headers.get("x-github-event", "")
    delivery = request.headers.get("x-github-delivery", "")
    if not event or not delivery or len(delivery) > 100:
        raise InvalidRequest("X-GitHub-Event and X-GitHub-Delivery headers are required")
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise InvalidRequest(f"webhook body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidRequest("webhook body must be a JSON object")
    await _record_delivery(request, delivery, event)
    answer = await _dispatch(request, event, payload)
    logger.info("webhook %s (%s): %s", delivery, event, answer.get("status"))
    return JSONResponse({"delivery": delivery, "event": event, **answer})


async def _record_delivery(request: Request, delivery: str, event: str) -> None:
    sessions = app_state(request).runtime.store.sessions
    try:
        async with sessions.begin() as session:
            session.add(WebhookDelivery(id=delivery, event=event, received_at=datetime.now(UTC)))
    except IntegrityError:
        # a replayed delivery does nothing (and a push of a built commit builds nothing anyway)
        raise Conflict(f"delivery {delivery} was received already: replays are refused") from None


async def _dispatch(request: Request, event: str, payload: dict[str, Any]) -> dict[str, Any]:
    services = build_services_of(request)
    if event == "ping":
        return {"status": "pong", "hookId": payload.get("hook_id")}
    if event == "push":
        return await events.on_push(services, payload)
    if event in ("installation", "installation_repositories"):
        sessions = app_state(request).runtime.store.sessions
        return await events.on_installation(services, payload, sessions)
    return {"status": "ignored", "reason": f"event {event!r} is not used"}


routes = [Route("/github/webhook", receive, methods=["POST"])]
