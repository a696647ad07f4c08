"""The `conveyor agent` sidecar: serve an instance's socket, relay requests to the control plane.

On Nomad the worker runs on another machine, so the control plane cannot serve its socket. The
sidecar, in the worker's allocation, does, and forwards every request verbatim (relay_wire.py)
with the attempt's token. Budgets follow the worker SDK: each request has a 15 s timeout and the
control plane may hold `/get-subtask-result` ~10 s, so a relayed request may take up to 13 s.
Failures the worker should retry are answered with 5xx (the SDKs retry those with backoff for
minutes, which covers a control-plane restart); a refused token is a 4xx, which ends the worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from scheduler.relay_wire import BadEnvelope, decode_response, encode_request, relay_url
from scheduler.uds_http import Request, Response, UnixServer, serve_unix

logger = logging.getLogger("conveyor.relay")


@dataclass(frozen=True)
class RelayConfig:
    """What the dispatch payload tells the sidecar (written by the Nomad executor)."""

    attempt_id: str
    token: str
    control_plane_url: str

    @classmethod
    def from_payload(cls, raw: bytes) -> RelayConfig:
        try:
            data: Any = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"the dispatch payload is not JSON: {exc}") from None
        fields = ("attempt_id", "token", "control_plane_url")
        if not isinstance(data, dict) or not all(isinstance(data.get(f), str) for f in fields):
            raise ValueError(f"the dispatch payload must be an object with string {fields}")
        return cls(data["attempt_id"], data["token"], data["control_plane_url"])


@dataclass(frozen=True)
class RelayTimeouts:
    connect_s: float = 2.0
    # ≥ 12 s so a held /get-subtask-result (~10 s) comes back; < the SDK's 15 s socket timeout
    read_s: float = 13.0
    # connection refused / instance not attached yet: retried this long before answering 503
    retry_window_s: float = 1.5


class Relay:
    """Answers each socket request with the control plane's answer for this attempt."""

    def __init__(
        self,
        config: RelayConfig,
        client: httpx.AsyncClient,
        timeouts: RelayTimeouts | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] | None = None,  # None: the event loop's
    ) -> None:
        self._config = config
        self._client = client
        self._timeouts = timeouts or RelayTimeouts()
        self._sleep = sleep
        self._clock = clock
        self._url = relay_url(config.control_plane_url, config.attempt_id)

    async def serve(self, socket_path: Path, *, max_body: int) -> UnixServer:
        # a restarted sidecar finds its old socket
        await asyncio.to_thread(socket_path.unlink, missing_ok=True)
        return await serve_unix(socket_path, self.forward, max_body=max_body)

    async def forward(self, request: Request) -> Response:
        clock = self._clock or asyncio.get_running_loop().time
        retry_until = clock() + self._timeouts.retry_window_s
        delay = 0.1
        while True:
            answer, retryable = await self._once(request)
            if not retryable or clock() + delay > retry_until:
                return answer
            await self._sleep(delay)
            delay = min(delay * 2, 0.5)

    async def _once(self, request: Request) -> tuple[Response, bool]:
        """(answer for the worker, whether retrying now may help)."""
        attempt = self._config.attempt_id
        timeout = httpx.Timeout(self._timeouts.read_s, connect=self._timeouts.connect_s)
        try:
            reply = await self._client.post(
                self._url,
                json=encode_request(request),
                headers={"Authorization": f"Bearer {self._config.token}"},
                timeout=timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            return _failure(503, f"attempt {attempt}: control plane unreachable: {exc}"), True
        except httpx.TransportError as exc:
            # the request may have arrived: the worker's own retry decides, not us
            return _failure(
                504, f"attempt {attempt}: relay to the control plane failed: {exc}"
            ), False
        if reply.status_code == 200:
            try:
                return decode_response(reply.json()), False
            except (ValueError, BadEnvelope) as exc:
                return _failure(502, f"attempt {attempt}: bad relay answer: {exc}"), False
        message = _message(reply)
        if reply.status_code in (401, 403):
            logger.error(
                "attempt %s: the control plane refused the attempt token: %s", attempt, message
            )
            return _failure(403, f"attempt {attempt}: relay refused: {message}"), False
        if reply.status_code == 503:
            return _failure(503, f"attempt {attempt}: {message}"), True
        logger.warning("attempt %s: relay answered %s: %s", attempt, reply.status_code, message)
        return _failure(
            502, f"attempt {attempt}: relay answered {reply.status_code}: {message}"
        ), False


def _message(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:200]
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str):
        return message
    return reply.text[:200]


def _failure(status: int, message: str) -> Response:
    if status >= 500:
        logger.warning("%s", message)
    return Response.json(status, {"message": message})
