"""Compute used per task and per day (with the queue's counts; the queue has its own page)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.state import service_of
from app.dashboard.changes import change_log
from app.dashboard.chart import bar_chart
from app.dashboard.handlers import page
from app.dashboard.rendering import render
from app.dashboard.visitor import Visitor

DAYS_CHARTED = 30


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _rows(report: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rows = report.get(key)
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


async def usage_page(request: Request, visitor: Visitor) -> Response:
    cursor = change_log(request).cursor
    report = await service_of(request).usage(visitor.workspace)
    queue = report.get("queue") if isinstance(report.get("queue"), dict) else {}
    assert isinstance(queue, dict)
    per_task = _rows(report, "perTask")
    per_day = _rows(report, "perDay")[-DAYS_CHARTED:]
    limit = int(_number(report.get("maxConcurrency")))
    running = int(_number(queue.get("running")))
    days = [(str(row.get("day", "")), row) for row in per_day]
    context = {
        "queue": {
            "running": running,
            "waiting": int(_number(queue.get("waiting"))),
            "pending": int(_number(queue.get("pending"))),
        },
        "limit": limit,
        "slots_used_percent": round(100 * running / limit) if limit else 0,
        "per_task": per_task,
        "per_day": per_day,
        "seconds_chart": bar_chart(
            "Compute seconds per day",
            [(day[5:], _number(row.get("computeSeconds"))) for day, row in days],
            "s",
        ),
        "cost_chart": bar_chart(
            "Cost per day (USD)",
            [(day[5:], _number(row.get("costUsd"))) for day, row in days],
            "USD",
        ),
        "total_seconds": sum(_number(row.get("computeSeconds")) for row in per_task),
        "total_cost": sum(_number(row.get("costUsd")) for row in per_task),
        "live_cursor": cursor,
    }
    template = "usage_live.html" if request.query_params.get("part") == "live" else "usage.html"
    return render(request, visitor, template, context)


routes = [Route("/usage", page(usage_page), methods=["GET"])]
