"""The step log of flow runs: begin a step by ``seq`` (or replay it), record its tries and end."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from core.db.database import Database
from core.errors import NotFound
from scheduler.flows.tables import (
    StepInfo,
    StepStatus,
    StepType,
    flow_errors,
    flow_steps,
    step_info,
)
from scheduler.runs.values import utcnow


@dataclass(frozen=True)
class StepRequest:
    """What a flow attempt says of the step it reached."""

    seq: int
    type: StepType
    name: str
    input_hash: str
    input_json: str
    sleep_seconds: float = 0.0


@dataclass(frozen=True)
class Mismatch:
    """The step at ``seq`` is not the one recorded: Render's `FlowRunErrorDetails`."""

    seq: int
    kind: str  # "type" (its type or name differs) or "input_hash"
    expected: str
    actual: str

    @property
    def details(self) -> dict[str, Any]:
        return {
            "code": "flow_determinism_error",
            "message": self.message,
            "kind": self.kind,
            "seq": self.seq,
            "expected": self.expected,
            "actual": self.actual,
        }

    @property
    def message(self) -> str:
        return (
            f"flow_determinism_error: step {self.seq} was recorded as {self.expected}, "
            f"this attempt reached {self.actual}"
        )


def _mismatch(row: Any, step: StepRequest) -> Mismatch | None:
    if row.type != step.type.value or row.name != step.name:
        return Mismatch(step.seq, "type", f"{row.type}:{row.name}", f"{step.type}:{step.name}")
    if row.input_hash != step.input_hash:
        return Mismatch(step.seq, "input_hash", row.input_hash, step.input_hash)
    return None


class FlowSteps:
    """Reads and writes of the step log; each method one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def begin(self, run_id: str, flow_attempt: int, step: StepRequest) -> StepInfo | Mismatch:
        """The step's record: new, or the recorded one when this attempt replays it.

        A sleep is recorded with its wake time on first reach; reached again at or after it,
        it is done. A step that differs from its record fails the run (recorded for its
        ``errorDetails``).
        """

        def begin(conn: Connection) -> StepInfo | Mismatch:
            now = utcnow()
            row = _row(conn, run_id, step.seq)
            if row is None:
                sleep = step.type is StepType.SLEEP
                woken = sleep and step.sleep_seconds <= 0
                values = {
                    "run_id": run_id,
                    "seq": step.seq,
                    "type": step.type.value,
                    "name": step.name,
                    "input_hash": step.input_hash,
                    "input_json": step.input_json,
                    "status": (StepStatus.SUCCEEDED if woken else StepStatus.RUNNING).value,
                    # the attempt that completed it (Render's hint), 0 until then
                    "flow_attempt": flow_attempt if woken else 0,
                    "attempts": "[]",
                    "wake_at": now + timedelta(seconds=step.sleep_seconds) if sleep else None,
                    "started_at": now,
                    "completed_at": now if woken else None,
                }
                conn.execute(insert(flow_steps), values)
                return step_info(_row(conn, run_id, step.seq))
            mismatch = _mismatch(row, step)
            if mismatch is not None:
                details = {**mismatch.details, "flowAttempt": flow_attempt}
                conn.execute(
                    insert(flow_errors), {"run_id": run_id, "details": json.dumps(details)}
                )
                return mismatch
            woken = row.wake_at is not None and row.wake_at <= now
            if row.status == StepStatus.RUNNING.value and woken:
                _update(
                    conn,
                    run_id,
                    step.seq,
                    status=StepStatus.SUCCEEDED,
                    completed_at=now,
                    flow_attempt=flow_attempt,
                )
                row = _row(conn, run_id, step.seq)
            return step_info(row)

        return await self.db.write(begin)

    async def record_failure(
        self,
        run_id: str,
        seq: int,
        *,
        flow_attempt: int,
        error: str,
        started_at: datetime,
        final: bool,
    ) -> None:
        """One failed try of an inline step (numbered across flow attempts); `final`: no
        retry is left in this attempt, the step has failed."""

        def record(conn: Connection) -> None:
            row = _existing(conn, run_id, seq)
            tries: list[dict[str, Any]] = json.loads(row.attempts)
            tries.append(
                {
                    "attempt": len(tries) + 1,
                    "flowRunAttempt": flow_attempt,
                    "error": error,
                    "startedAt": started_at.isoformat(),
                    "completedAt": utcnow().isoformat(),
                }
            )
            values: dict[str, Any] = {"attempts": json.dumps(tries), "error": error}
            if final:
                values |= {"status": StepStatus.FAILED, "flow_attempt": flow_attempt}
            _update(conn, run_id, seq, **values)

        await self.db.write(record)

    async def succeed(self, run_id: str, seq: int, result_json: str, flow_attempt: int) -> None:
        await self.db.write(
            lambda conn: _update(
                conn,
                run_id,
                seq,
                status=StepStatus.SUCCEEDED,
                result_json=result_json,
                completed_at=utcnow(),
                error=None,
                flow_attempt=flow_attempt,
            )
        )

    async def set_child(self, run_id: str, seq: int, child_run_id: str) -> None:
        await self.db.write(lambda conn: _update(conn, run_id, seq, child_run_id=child_run_id))

    async def steps(self, run_id: str) -> list[StepInfo]:
        def read(conn: Connection) -> list[StepInfo]:
            rows = conn.execute(
                select(flow_steps).where(flow_steps.c.run_id == run_id).order_by(flow_steps.c.seq)
            ).all()
            return [step_info(row) for row in rows]

        return await self.db.read(read)

    async def step(self, run_id: str, seq: int) -> StepInfo:
        return await self.db.read(lambda conn: step_info(_existing(conn, run_id, seq)))

    async def error_details(self, run_id: str) -> dict[str, Any] | None:
        text = await self.db.read(
            lambda conn: conn.scalar(
                select(flow_errors.c.details).where(flow_errors.c.run_id == run_id)
            )
        )
        return json.loads(text) if text is not None else None


def _row(conn: Connection, run_id: str, seq: int) -> Any:
    return conn.execute(
        select(flow_steps).where(flow_steps.c.run_id == run_id, flow_steps.c.seq == seq)
    ).first()


def _existing(conn: Connection, run_id: str, seq: int) -> Any:
    row = _row(conn, run_id, seq)
    if row is None:
        raise NotFound(f"flow run {run_id} has no step {seq}")
    return row


def _update(conn: Connection, run_id: str, seq: int, **values: Any) -> None:
    conn.execute(
        update(flow_steps)
        .where(flow_steps.c.run_id == run_id, flow_steps.c.seq == seq)
        .values(**values)
    )
