"""`/v1/schedules`: the cron schedules of the workspace's active versions (a Conveyor addition)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.auth import workspace_of
from app.api.responses import JSONResponse
from app.api.serialize import timestamp
from app.api.state import service_of
from core.domain import ScheduleInfo


def schedule_json(schedule: ScheduleInfo) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": schedule.id,
        "workflowId": schedule.workflow_id,
        "taskSlug": schedule.task_slug,
        "cron": schedule.cron,
        "nextFireAt": timestamp(schedule.next_fire_at),
    }
    if schedule.last_fired_at is not None:
        body["lastFiredAt"] = timestamp(schedule.last_fired_at)
    if schedule.last_run_id is not None:
        body["lastTaskRunId"] = schedule.last_run_id
    return body


async def list_schedules(request: Request) -> Response:
    workspace = await workspace_of(request)
    schedules = await service_of(request).list_schedules(workspace)
    return JSONResponse([{"schedule": schedule_json(s), "cursor": s.id} for s in schedules])


routes = [Route("/v1/schedules", list_schedules, methods=["GET"])]
