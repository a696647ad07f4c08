"""The step log of flow runs: begin a step by ``seq`` (or replay it), record its tries and end."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy import (
    BindParameter,
    Connection,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from core.blobs.base import flow_step_input_key, flow_step_result_key
from core.db.database import Database
from core.errors import NotFound
from core.settings import LimitSettings
from scheduler.flows.tables import (
    StepDetails,
    StepInfo,
    StepStatus,
    StepType,
    flow_errors,
    flow_steps,
    step_info,
)
from scheduler.payloads import PayloadStore
from scheduler.runs.values import utcnow

T = TypeVar("T")


@dataclass(frozen=True)
class StepRequest:
    """What a flow attempt says of the step it reached."""

    seq: int
    type: StepType
    name: str
    input_hash: str
    input_json: str
    sleep_seconds: float = 0.0
    wake_at: datetime | None = None  # a sleep until a given time, instead of for seconds


@dataclass(frozen=True)
class Begun:
    """A step's record, and the highest ``seq`` in its run's log (this step's included): the
    worker runs steps beyond it without announcing them (`FlowSteps.record`)."""

    step: StepInfo
    last_seq: int


@dataclass(frozen=True)
class _NeedsInputBlob:
    """A new step's input is too large to keep inline: store it, then write the step again."""


_NEEDS_INPUT_BLOB = _NeedsInputBlob()


@dataclass(frozen=True)
class Refusal:
    """A flow rule fails the run: Render's `FlowRunErrorDetails` (code, message, seq…)."""

    details: dict[str, Any]

    @property
    def message(self) -> str:
        return str(self.details["message"])


def mismatch(seq: int, kind: str, expected: str, actual: str) -> Refusal:
    """The step at ``seq`` is not the one recorded; ``kind`` is ``type`` (its type or name
    differs) or ``input_hash``."""
    message = (
        f"flow_determinism_error: step {seq} was recorded as {expected}, "
        f"this attempt reached {actual}"
    )
    return Refusal(
        {
            "code": "flow_determinism_error",
            "message": message,
            "kind": kind,
            "seq": seq,
            "expected": expected,
            "actual": actual,
        }
    )


def over_limit(code: str, seq: int, limit: int, value: int, what: str, setting: str) -> Refusal:
    message = f"{code}: {what} at step {seq} is {value}, over the limit of {limit} ({setting})"
    return Refusal({"code": code, "message": message, "seq": seq, "limit": limit, "value": value})


def _mismatch(row: Any, step: StepRequest) -> Refusal | None:
    if row.type != step.type.value or row.name != step.name:
        return mismatch(step.seq, "type", f"{row.type}:{row.name}", f"{step.type}:{step.name}")
    if row.input_hash != step.input_hash:
        return mismatch(step.seq, "input_hash", row.input_hash, step.input_hash)
    return None


def _new_step_refusal(step: StepRequest, limits: LimitSettings) -> Refusal | None:
    if step.seq > limits.max_flow_steps:
        return over_limit(
            "flow_step_limit_exceeded",
            step.seq,
            limits.max_flow_steps,
            step.seq,
            "the step count",
            "CONVEYOR_LIMITS__MAX_FLOW_STEPS",
        )
    if len(step.input_json) > limits.max_flow_payload_chars:
        return _payload(step.seq, len(step.input_json), "its input", limits)
    return None


def _payload(seq: int, size: int, what: str, limits: LimitSettings) -> Refusal:
    return over_limit(
        "flow_payload_too_large",
        seq,
        limits.max_flow_payload_chars,
        size,
        f"{what} (JSON characters)",
        "CONVEYOR_LIMITS__MAX_FLOW_PAYLOAD_CHARS",
    )


def _record_refusal(conn: Connection, run_id: str, refusal: Refusal, flow_attempt: int) -> None:
    details = {**refusal.details, "flowAttempt": flow_attempt}
    conn.execute(delete(flow_errors).where(flow_errors.c.run_id == run_id))
    conn.execute(insert(flow_errors), {"run_id": run_id, "details": json.dumps(details)})


class FlowSteps:
    """Reads and writes of the step log; each method one transaction."""

    def __init__(self, db: Database, limits: LimitSettings, payloads: PayloadStore) -> None:
        self.db = db
        self.limits = limits
        self._payloads = payloads

    async def begin(self, run_id: str, flow_attempt: int, step: StepRequest) -> Begun | Refusal:
        """The step's record: new, or the recorded one when this attempt replays it.

        A sleep is recorded with its wake time on first reach; reached again at or after it,
        it is done. A step that differs from its record fails the run (recorded for its
        ``errorDetails``). A new step's input too large to keep inline goes to the blob store
        first, under a key of this attempt's, so that a replay that differs overwrites nothing.
        """

        def begin(conn: Connection, input_key: str | None) -> Begun | Refusal | _NeedsInputBlob:
            found = start(conn, input_key)
            if isinstance(found, Refusal | _NeedsInputBlob):
                return found
            last = conn.scalar(
                select(func.max(flow_steps.c.seq)).where(flow_steps.c.run_id == run_id)
            )
            return Begun(found, int(last or step.seq))

        def start(conn: Connection, input_key: str | None) -> StepInfo | Refusal | _NeedsInputBlob:
            now = utcnow()
            row = _row(conn, run_id, step.seq)
            if row is None:
                refused = _new_step_refusal(step, self.limits)
                if refused is not None:
                    _record_refusal(conn, run_id, refused, flow_attempt)
                    return refused
                if input_key is None and not self._payloads.fits_inline(step.input_json):
                    return _NEEDS_INPUT_BLOB
                sleep = step.type is StepType.SLEEP
                wake_at = step.wake_at or now + timedelta(seconds=step.sleep_seconds)
                woken = sleep and wake_at <= now
                values = _new_row(
                    run_id,
                    step,
                    input_key,
                    status=(StepStatus.SUCCEEDED if woken else StepStatus.RUNNING).value,
                    # the attempt that completed it (Render's hint), 0 until then
                    flow_attempt=flow_attempt if woken else 0,
                    wake_at=wake_at if sleep else None,
                    started_at=now,
                    completed_at=now if woken else None,
                )
                conn.execute(_INSERT, values)
                return step_info(_row(conn, run_id, step.seq))
            differs = _mismatch(row, step)
            if differs is not None:
                _record_refusal(conn, run_id, differs, flow_attempt)
                return differs
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

        return await self._write_new(begin, run_id, step, flow_attempt)

    async def record(
        self,
        run_id: str,
        flow_attempt: int,
        step: StepRequest,
        result_json: str,
        started_at: datetime,
    ) -> StepInfo | Refusal:
        """An inline step the worker ran without announcing it (one beyond every recorded
        step), with its result: one transaction instead of `begin` and `succeed`.

        A record found at its ``seq`` is held to it as `begin` would; a running one is
        completed, a succeeded one kept as it is.
        """
        result_key = await self._put_result(run_id, step.seq, flow_attempt, result_json)

        def record(conn: Connection, input_key: str | None) -> StepInfo | Refusal | _NeedsInputBlob:
            row, history = _row_and_history(conn, run_id, step.seq)
            finished = row is not None and row.status == StepStatus.SUCCEEDED.value
            if row is None:
                refused = _new_step_refusal(step, self.limits) or self._result_refusal(
                    history, step.seq, result_json, unrecorded=step
                )
            else:
                refused = _mismatch(row, step)
                if refused is None and not finished:
                    refused = self._result_refusal(history, step.seq, result_json)
            if refused is not None:
                _record_refusal(conn, run_id, refused, flow_attempt)
                return refused
            if (
                row is None
                and input_key is None
                and not self._payloads.fits_inline(step.input_json)
            ):
                return _NEEDS_INPUT_BLOB
            if finished:
                return step_info(row)
            done = _succeeded(result_json, result_key, flow_attempt)
            if row is not None:
                _complete(conn, run_id, step.seq, done, len(result_json))
                return step_info(SimpleNamespace(**{**row._mapping, **done}))
            started = min(started_at, done["completed_at"])
            new = _new_row(run_id, step, input_key, started_at=started, **done)
            new["payload_chars"] += len(result_json)
            conn.execute(_INSERT, new)
            return step_info(SimpleNamespace(**new, child_run_id=None))

        return await self._write_new(record, run_id, step, flow_attempt)

    async def _write_new(
        self,
        fn: Callable[[Connection, str | None], T | _NeedsInputBlob],
        run_id: str,
        step: StepRequest,
        flow_attempt: int,
    ) -> T:
        """`fn` as one transaction; when it finds the step new and its input too large to keep
        inline, the input goes to the blob store and `fn` runs again with the blob's key."""
        written = await self.db.write(lambda conn: fn(conn, None))
        if isinstance(written, _NeedsInputBlob):
            key = flow_step_input_key(run_id, step.seq, flow_attempt)
            stored = await self._put(key, step.input_json)
            written = await self.db.write(lambda conn: fn(conn, stored))
        assert not isinstance(written, _NeedsInputBlob)  # the input has its key now
        return written

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

    async def succeed(
        self, run_id: str, seq: int, result_json: str, flow_attempt: int
    ) -> Refusal | None:
        """Records the step's result, unless it or the run's history grows past its limit."""
        result_key = await self._put_result(run_id, seq, flow_attempt, result_json)

        def succeed(conn: Connection) -> Refusal | None:
            refused = self._result_refusal(_history(conn, run_id), seq, result_json)
            if refused is not None:
                _record_refusal(conn, run_id, refused, flow_attempt)
                return refused
            done = _succeeded(result_json, result_key, flow_attempt)
            _complete(conn, run_id, seq, done, len(result_json))
            return None

        return await self.db.write(succeed)

    async def _put_result(
        self, run_id: str, seq: int, flow_attempt: int, result_json: str
    ) -> str | None:
        """The result's blob key when it is too large to keep inline (written now), else None."""
        if self._payloads.fits_inline(result_json):
            return None
        return await self._put(flow_step_result_key(run_id, seq, flow_attempt), result_json)

    async def _put(self, key: str, text: str) -> str:
        _, stored = await self._payloads.save(key, text)
        assert stored is not None  # only called for text too large to keep inline
        return stored

    def _result_refusal(
        self,
        recorded: int,
        seq: int,
        result_json: str,
        unrecorded: StepRequest | None = None,
    ) -> Refusal | None:
        """Past a limit with this result (and `unrecorded`'s input, a step not yet in the log),
        the log holding `recorded` characters."""
        if len(result_json) > self.limits.max_flow_payload_chars:
            return _payload(seq, len(result_json), "its result", self.limits)
        history = recorded + len(result_json)
        if unrecorded is not None:
            history += len(unrecorded.input_json)
        if history > self.limits.max_flow_history_chars:
            return over_limit(
                "flow_history_too_large",
                seq,
                self.limits.max_flow_history_chars,
                history,
                "the step log (JSON characters)",
                "CONVEYOR_LIMITS__MAX_FLOW_HISTORY_CHARS",
            )
        return None

    async def set_child(self, run_id: str, seq: int, child_run_id: str) -> None:
        await self.db.write(lambda conn: _update(conn, run_id, seq, child_run_id=child_run_id))

    async def steps(self, run_id: str) -> list[StepInfo]:
        def read(conn: Connection) -> list[StepInfo]:
            rows = conn.execute(
                select(flow_steps).where(flow_steps.c.run_id == run_id).order_by(flow_steps.c.seq)
            ).all()
            return [step_info(row) for row in rows]

        return await self.db.read(read)

    async def details(self, run_id: str, seq: int) -> StepDetails:
        """The step at ``seq`` with its input and result, wherever they are kept."""
        info = await self.db.read(lambda conn: step_info(_existing(conn, run_id, seq)))
        return StepDetails(
            info,
            await self._payloads.load(info.input_json, info.input_key),
            await self.result(info),
        )

    async def step(self, run_id: str, seq: int) -> StepInfo:
        return await self.db.read(lambda conn: step_info(_existing(conn, run_id, seq)))

    async def result(self, info: StepInfo) -> Any:
        """A succeeded step's result (what a replay returns); None before it succeeds."""
        if info.status is not StepStatus.SUCCEEDED:
            return None
        return await self._payloads.load(info.result_json, info.result_key)

    async def error_details(self, run_id: str) -> dict[str, Any] | None:
        text = await self.db.read(
            lambda conn: conn.scalar(
                select(flow_errors.c.details).where(flow_errors.c.run_id == run_id)
            )
        )
        return json.loads(text) if text is not None else None


def _succeeded(result_json: str, result_key: str | None, flow_attempt: int) -> dict[str, Any]:
    """A step's columns once it has its result (`flow_attempt`: the attempt that ran it)."""
    return {
        "status": StepStatus.SUCCEEDED.value,
        "result_json": None if result_key is not None else result_json,
        "result_key": result_key,
        "completed_at": utcnow(),
        "error": None,
        "flow_attempt": flow_attempt,
    }


def _complete(
    conn: Connection, run_id: str, seq: int, done: dict[str, Any], result_chars: int
) -> None:
    """A recorded step gets its result (it has none before it succeeds, once)."""
    _update(conn, run_id, seq, **done, payload_chars=flow_steps.c.payload_chars + result_chars)


def _new_row(
    run_id: str, step: StepRequest, input_key: str | None, **values: Any
) -> dict[str, Any]:
    """A step's first row: what the request says of it, and `values` (status, times…)."""
    return {
        "run_id": run_id,
        "seq": step.seq,
        "type": step.type.value,
        "name": step.name,
        "input_hash": step.input_hash,
        "input_json": None if input_key is not None else step.input_json,
        "input_key": input_key,
        "payload_chars": len(step.input_json),
        "attempts": "[]",
        "wake_at": None,
        "result_key": None,
        **values,
    }


def _row(conn: Connection, run_id: str, seq: int) -> Any:
    return conn.execute(_ROW, {"step_run": run_id, "step_seq": seq}).first()


# built once: a flow's every step runs them, and building a statement costs more than its
# execution on SQLite
_RUN: BindParameter[str] = bindparam("step_run")
_SEQ: BindParameter[int] = bindparam("step_seq")
_ROW = select(flow_steps).where(flow_steps.c.run_id == _RUN, flow_steps.c.seq == _SEQ)
# what the run's step log holds, in JSON characters (the history limit's measure)
_HISTORY = select(func.coalesce(func.sum(flow_steps.c.payload_chars), 0)).where(
    flow_steps.c.run_id == _RUN
)
_ANCHOR = select(_HISTORY.scalar_subquery().label("history")).subquery()
_ROW_AND_HISTORY = select(_ANCHOR.c.history, flow_steps).select_from(
    _ANCHOR.outerjoin(flow_steps, and_(flow_steps.c.run_id == _RUN, flow_steps.c.seq == _SEQ))
)
_INSERT = insert(flow_steps)


def _history(conn: Connection, run_id: str) -> int:
    return int(conn.scalar(_HISTORY, {"step_run": run_id}) or 0)


def _row_and_history(conn: Connection, run_id: str, seq: int) -> tuple[Any, int]:
    """The step's row (None when it is not in the log) and `_history`, in one statement: one
    round trip less per step on PostgreSQL."""
    found = conn.execute(_ROW_AND_HISTORY, {"step_run": run_id, "step_seq": seq}).one()
    return (found if found.run_id is not None else None), int(found.history)


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
