"""What create_app stores on the application, read back with types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from starlette.requests import Request

if TYPE_CHECKING:
    from scheduler.runs.service import RunService
    from scheduler.runtime import Runtime


@dataclass(frozen=True)
class AppState:
    runtime: Runtime
    anonymous_workspace: str | None
    sse_ping_seconds: float


def app_state(request: Request) -> AppState:
    return cast(AppState, request.app.state.conveyor)


def service_of(request: Request) -> RunService:
    return app_state(request).runtime.service
