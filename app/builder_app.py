"""What a `conveyor builder` serves: the relay of register-mode instances on Nomad, and health.

A register step on Nomad is a dispatch of the new image whose `conveyor agent` sidecar relays the
worker's requests to the URL in its payload. Registration waits on a future in the process that
started it, so the builder serves that relay itself (`CONVEYOR_BUILDER__ADVERTISE_URL`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from app.api import instance_relay
from app.api.errors import EXCEPTION_HANDLERS, CatchAllMiddleware
from app.api.state import AppState
from app.server import SSE_PING_SECONDS, healthz

if TYPE_CHECKING:
    from scheduler.runtime import Runtime


def create_builder_app(runtime: Runtime) -> Starlette:
    app = Starlette(
        routes=[Route("/healthz", healthz, methods=["GET"]), *instance_relay.routes],
        middleware=[Middleware(CatchAllMiddleware)],
        exception_handlers=dict(EXCEPTION_HANDLERS),
    )
    app.state.conveyor = AppState(runtime, None, SSE_PING_SECONDS)
    return app
