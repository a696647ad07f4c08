"""Server-side HTML: the Jinja2 environment and responses with the dashboard's headers."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.dashboard import present
from app.dashboard.flow_runs import paused_until
from app.dashboard.serving import asset_url
from app.dashboard.visitor import Visitor

TEMPLATES = Path(__file__).parent / "templates"

# Scripts and styles come only from our own static files, so injected markup cannot run code.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# the visitor's choice against the system's (set by the page's script; absent: follow the system)
THEME_COOKIE = "conveyor_theme"
THEMES = frozenset({"light", "dark"})

STATUS_LABELS = {
    "pending": "Pending",
    "running": "Running",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "canceled": "Canceled",
    "paused": "Paused",  # a flow run asleep (pending to the run lifecycle)
}


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "svg"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = present.when
    env.filters["iso"] = present.iso
    env.filters["seconds"] = present.seconds_text
    env.filters["param_type"] = present.parameter_type
    env.filters["summary"] = present.summary
    env.filters["epoch_ms"] = present.epoch_ms
    env.filters["clock"] = present.clock
    env.filters["usd"] = present.usd
    env.filters["short_id"] = present.short_id
    env.globals["asset"] = asset_url
    env.globals["duration"] = present.duration
    env.globals["status_labels"] = STATUS_LABELS
    env.globals["paused_until"] = paused_until
    return env


def render(
    request: Request,
    visitor: Visitor | None,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    page = environment().get_template(template)
    theme = request.cookies.get(THEME_COOKIE)
    html = page.render(
        request=request,
        visitor=visitor,
        csrf=visitor.session.csrf if visitor is not None else "",
        path=request.url.path,
        theme=theme if theme in THEMES else None,
        now_ms=present.epoch_ms(datetime.now(UTC)),
        **context,
    )
    # A lone surrogate a task wrote (its error, its output) shows as its escape, not as a 500.
    body = html.encode("utf-8", "backslashreplace")
    return HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
