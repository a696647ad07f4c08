"""How a worker runs one attempt of a flow: from the top, replaying what is recorded."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from conveyor._codec import ErrorReport, b64_json, encode_output
from conveyor._flows.context import FlowContext, FlowPaused
from conveyor.errors import FlowDeterminismError, FlowLimitError

if TYPE_CHECKING:
    from conveyor._flows.definition import FlowDefinition
    from conveyor._uds import SocketClient


def run_flow(
    definition: FlowDefinition[Any, Any],
    client: SocketClient,
    payload: Any,
    *,
    run_id: str | None,
    attempt: int,
) -> int:
    """Runs the flow and sends its callback; a sleep that is not due sends none.

    Args:
        definition: The flow.
        client: The platform's socket.
        payload: The run's input.
        run_id: The run's id.
        attempt: The attempt number.

    Returns:
        The exit code: 0 after a result or a pause, 1 after an error callback.
    """
    ctx = FlowContext(client, flow_name=definition.name, run_id=run_id, attempt=attempt)
    try:
        args, kwargs = definition.inputs.bind(payload)
    except Exception as exc:
        return _report(client, ErrorReport.from_exception(exc, retryable=False))
    try:
        result = asyncio.run(client.closing(definition.func(ctx, *args, **kwargs)))
        output = encode_output(definition.name, result)
    except FlowPaused:
        return 0  # the platform ended this attempt; the next one starts at wake time
    except (FlowDeterminismError, FlowLimitError) as exc:
        # another attempt would reach the same step: the run fails now
        return _report(client, ErrorReport.from_exception(exc, retryable=False))
    except Exception as exc:
        return _report(client, ErrorReport.from_exception(exc))
    client.request_sync("POST", "/callback", {"complete": {"output": b64_json(output)}})
    return 0


def _report(client: SocketClient, report: ErrorReport) -> int:
    client.request_sync("POST", "/callback", {"error": report.to_wire()})
    return 1
