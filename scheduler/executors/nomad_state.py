"""Reading Nomad's allocations and evaluations as an attempt's InstanceState (pure functions)."""

from __future__ import annotations

from typing import Any

from scheduler.executors.base import InstanceState, InstanceStatus
from scheduler.executors.nomad_jobs import WORKER_TASK

_RUNNING = ("pending", "running")
_DOCKER_SIGNALLED = 128  # a container's exit code is 128 + n when signal n killed its process
_MAX_SIGNAL = 64
# events that explain why the worker never ran or stopped, worth a line in the attempt's log
_TELLING = (
    "Driver Failure",
    "Setup Failure",
    "Failed Validation",
    "Killing",
    "Sibling Task Failed",
)


def latest(allocations: list[dict[str, Any]]) -> dict[str, Any]:
    return max(allocations, key=lambda a: int(a.get("CreateIndex", 0)))


def allocation_state(allocation: dict[str, Any]) -> InstanceState:
    """ALIVE until every task of the allocation is dead; then the worker's exit.

    `lost` comes first: Nomad marks the allocations of a node it lost `lost` and leaves their
    task states at the last report the node made (`running`), since no one is left to update them.
    """
    client_status = allocation.get("ClientStatus", "")
    tasks: dict[str, Any] = allocation.get("TaskStates") or {}
    if client_status == "lost":
        node = allocation.get("NodeName") or allocation.get("NodeID") or "its node"
        return InstanceState(InstanceStatus.LOST, reason=f"Nomad lost the allocation's node {node}")
    if client_status in _RUNNING or any(t.get("State") != "dead" for t in tasks.values()):
        return InstanceState(InstanceStatus.ALIVE)
    events: list[dict[str, Any]] = (tasks.get(WORKER_TASK) or {}).get("Events") or []
    exit_code: int | None = None
    out_of_memory = False
    for event in events:
        if event.get("Type") == "Terminated":
            exit_code = _exit_code(event)
            out_of_memory = out_of_memory or _oom(event)
    return InstanceState(
        InstanceStatus.EXITED, exit_code, out_of_memory=out_of_memory, reason=_notes(events)
    )


def _exit_code(event: dict[str, Any]) -> int:
    """Negative for a signal, as the other executors report it.

    Drivers that see the signal (exec, raw_exec) report it as `Signal`; Docker reports only the
    container's exit code, 128 + n for a process killed by signal n, with `Signal: 0`.
    """
    signal = int(event.get("Signal") or 0)
    code = int(event.get("ExitCode") or 0)
    if signal:
        return -signal
    if _DOCKER_SIGNALLED < code <= _DOCKER_SIGNALLED + _MAX_SIGNAL:
        return -(code - _DOCKER_SIGNALLED)
    return code


def _oom(event: dict[str, Any]) -> bool:
    # the Terminated event's details, as Nomad's task runner sets them from the driver's result
    details: dict[str, Any] = event.get("Details") or {}
    return details.get("oom_killed") == "true"


def _notes(events: list[dict[str, Any]]) -> str | None:
    lines = [
        f"{e['Type']}: {e.get('DisplayMessage') or e.get('Message') or ''}".strip()
        for e in events
        if e.get("Type") in _TELLING
    ]
    return "; ".join(lines) or None


def blocked_reason(evaluation: dict[str, Any]) -> str | None:
    """Why the scheduler could not place the attempt, from the evaluation's failed placements."""
    failed: dict[str, Any] = evaluation.get("FailedTGAllocs") or {}
    if not failed and evaluation.get("Status") != "blocked":
        return None
    details = [_metrics(metric) for metric in failed.values()]
    text = "; ".join(d for d in details if d)
    return "waiting for capacity on the Nomad cluster" + (f": {text}" if text else "")


def _metrics(metric: dict[str, Any]) -> str:
    parts: list[str] = []
    evaluated = int(metric.get("NodesEvaluated") or 0)
    exhausted = int(metric.get("NodesExhausted") or 0)
    if evaluated or exhausted:
        parts.append(f"{exhausted} of {evaluated} nodes exhausted")
    dimensions: dict[str, int] = metric.get("DimensionExhausted") or {}
    if dimensions:
        parts.append("short of " + ", ".join(f"{k} ({v})" for k, v in sorted(dimensions.items())))
    filtered: dict[str, int] = metric.get("ConstraintFiltered") or {}
    if filtered:
        parts.append("filtered by " + ", ".join(f"{k} ({v})" for k, v in sorted(filtered.items())))
    quota = metric.get("QuotaExhausted") or []
    if quota:
        parts.append("quota exhausted: " + ", ".join(str(q) for q in quota))
    return ", ".join(parts)
