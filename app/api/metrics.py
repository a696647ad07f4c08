"""`/metrics`: the queue and usage of the caller's workspace in Prometheus' text format."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.api.auth import workspace_of
from app.api.state import service_of

_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(usage: dict[str, Any]) -> str:
    queue = usage["queue"]
    lines = [
        "# HELP conveyor_runs Runs not yet finished, by state.",
        "# TYPE conveyor_runs gauge",
        *(f'conveyor_runs{{state="{state}"}} {queue[state]}' for state in sorted(queue)),
        "# HELP conveyor_max_concurrency Attempts the workspace may run at once.",
        "# TYPE conveyor_max_concurrency gauge",
        f"conveyor_max_concurrency {usage['maxConcurrency']}",
        "# HELP conveyor_compute_seconds_total Instance seconds used, by task.",
        "# TYPE conveyor_compute_seconds_total counter",
    ]
    for row in usage["perTask"]:
        lines.append(
            f'conveyor_compute_seconds_total{{task="{_label(row["taskSlug"])}"}} '
            f"{row['computeSeconds']}"
        )
    lines += [
        "# HELP conveyor_cost_usd_total Cost of the instance seconds used, by task.",
        "# TYPE conveyor_cost_usd_total counter",
    ]
    for row in usage["perTask"]:
        lines.append(
            f'conveyor_cost_usd_total{{task="{_label(row["taskSlug"])}"}} {row["costUsd"]}'
        )
    lines += [
        "# HELP conveyor_attempts_total Attempts started, by task.",
        "# TYPE conveyor_attempts_total counter",
    ]
    for row in usage["perTask"]:
        lines.append(
            f'conveyor_attempts_total{{task="{_label(row["taskSlug"])}"}} {row["attempts"]}'
        )
    return "\n".join(lines) + "\n"


async def get_metrics(request: Request) -> Response:
    workspace = await workspace_of(request)
    usage = await service_of(request).usage(workspace)
    return PlainTextResponse(render(usage), media_type=_CONTENT_TYPE)


routes = [Route("/metrics", get_metrics, methods=["GET"])]
