"""`@app.flow`: what it accepts, and how flows are registered beside tasks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from conveyor import DuplicateTaskError, FlowContext, Retry, TaskDefinitionError, Workflows
from conveyor._uds import SocketClient
from conveyor._worker import flow_registration


def test_a_flow_is_registered_as_a_task_of_kind_flow_with_its_inputs() -> None:
    app = Workflows()

    @app.flow(retry=Retry(max_retries=1, wait_duration_ms=5, backoff_scaling=1.0), timeout=60)
    async def order(ctx: FlowContext, order_id: str, count: int = 1) -> str:
        """Places an order."""
        return order_id

    assert list(app.flows) == ["order"] and app.tasks == {}
    assert flow_registration(app.flows) == [
        {
            "name": "order",
            "kind": "flow",
            "options": {
                "retry": {"max_retries": 1, "wait_duration_ms": 5, "factor": 1.0},
                "timeout_seconds": 60,
            },
            "parameters": [
                {
                    "name": "order_id",
                    "type": "str",
                    "has_default": False,
                    "schema": {"type": "string"},
                },
                {
                    "name": "count",
                    "type": "int",
                    "has_default": True,
                    "default_value": "1",
                    "schema": {"type": "integer"},
                },
            ],
            "description": "Places an order.",
        }
    ]


def test_a_flow_runs_on_its_plan_or_the_apps_default() -> None:
    app = Workflows(default_plan="standard")

    @app.flow(plan="pro")
    async def big(ctx: FlowContext) -> None:
        return None

    @app.flow
    async def usual(ctx: FlowContext) -> None:
        return None

    options = {entry["name"]: entry["options"] for entry in flow_registration(app.flows)}
    assert (options["big"]["plan"], options["usual"]["plan"]) == ("pro", "standard")
    with pytest.raises(TaskDefinitionError, match="plan must be one of"):
        app.flow(plan="huge")


def test_a_flow_must_be_async_and_take_a_context() -> None:
    app = Workflows()

    def not_async(ctx: FlowContext) -> None:
        return None

    async def no_context() -> None:
        return None

    with pytest.raises(TaskDefinitionError, match="must be an async def"):
        app.flow(cast(Any, not_async))
    with pytest.raises(TaskDefinitionError, match="must take a FlowContext first"):
        app.flow(cast(Any, no_context))


def test_flows_and_tasks_share_one_namespace() -> None:
    app = Workflows()

    @app.task
    def shared() -> None:
        return None

    async def flow(ctx: FlowContext) -> None:
        return None

    with pytest.raises(DuplicateTaskError):
        app.flow(name="shared")(flow)
    app.flow(name="other")(flow)
    with pytest.raises(DuplicateTaskError):
        app.task(name="other")(shared.func)


def test_sleep_until_needs_a_timezone() -> None:
    ctx = FlowContext(SocketClient("/nonexistent/socket"), flow_name="f", run_id=None, attempt=0)
    with pytest.raises(ValueError, match="needs a timezone-aware time"):
        ctx.sleep_until(datetime.now(UTC).replace(tzinfo=None))
