"""The flow tables as Core tables, and the step row as a domain value."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table

from core.db.models import FlowError, FlowStep

flow_steps = cast(Table, FlowStep.__table__)
flow_errors = cast(Table, FlowError.__table__)


class StepType(StrEnum):
    """How a step runs."""

    INLINE = "inline"  # in the flow's own process, its result checkpointed
    DETACHED = "detached"  # a task run of its own, awaited without a slot
    SLEEP = "sleep"  # a durable wait: the attempt ends, a new one resumes at wake time


class StepStatus(StrEnum):
    """Where a step is."""

    RUNNING = "running"  # started, no result recorded (a sleep: not yet woken)
    SUCCEEDED = "succeeded"  # its result is recorded: replays return it
    FAILED = "failed"  # it failed past its retries: a new flow attempt runs it again


@dataclass(frozen=True)
class StepInfo:
    """A step's record without its payloads (`StepDetails` has them)."""

    run_id: str
    seq: int
    type: StepType
    name: str
    input_hash: str
    status: StepStatus
    flow_attempt: int  # the attempt that completed it; 0 until then
    error: str | None
    attempts: list[dict[str, Any]]  # an inline step's failed tries, numbered from 1
    wake_at: datetime | None
    child_run_id: str | None
    started_at: datetime
    completed_at: datetime | None
    # where its payloads are: inline JSON text, or a blob's key (`FlowSteps.details` reads them)
    input_json: str | None
    input_key: str | None
    result_json: str | None
    result_key: str | None

    @property
    def step_key(self) -> str:
        """Stable across attempts: the step's place and name."""
        return f"{self.seq}:{self.name}"


@dataclass(frozen=True)
class StepDetails:
    """A step's record with its input and (once it succeeded) its result."""

    info: StepInfo
    input: Any
    result: Any


def step_info(row: Any) -> StepInfo:
    return StepInfo(
        run_id=row.run_id,
        seq=row.seq,
        type=StepType(row.type),
        name=row.name,
        input_hash=row.input_hash,
        status=StepStatus(row.status),
        flow_attempt=row.flow_attempt,
        error=row.error,
        attempts=json.loads(row.attempts),
        wake_at=row.wake_at,
        child_run_id=row.child_run_id,
        started_at=row.started_at,
        completed_at=row.completed_at,
        input_json=row.input_json,
        input_key=row.input_key,
        result_json=row.result_json,
        result_key=row.result_key,
    )
