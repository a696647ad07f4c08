"""The worker's flow routes on its instance socket (docs/flows.md, "The flow protocol").

- ``POST /flow-step {seq, type, name, input, sleep_seconds? | wake_at?}`` → the step's record:
  ``{status, result?, wake_at?, failures, task_run_id?, last_seq, max_steps,
  max_payload_chars}``, or ``{status: "refused", message, details}`` when a flow rule fails the
  run (a step that is not the one recorded at ``seq``, a limit); ``last_seq`` is the highest
  ``seq`` in the log: an inline step beyond it (within the limits) is new, and the worker may run
  it first and record it with its result:
- ``POST /flow-step-record {seq, type: "inline", name, input, result, started_at}`` → the step's
  record (or ``{status: "refused", …}``): one request for a new inline step instead of two;
- ``POST /flow-step-failed {seq, error, started_at, final}`` — one failed try of an inline step;
- ``POST /flow-step-done {seq, result}`` — the step's result, replayed from now on (or
  ``{status: "refused", …}`` past a limit);
- ``POST /flow-step-child {seq, task_run_id}`` — the task run a detached step started;
- ``POST /flow-pause {seq}`` — the sleep at ``seq`` is not due: end this attempt until it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core.errors import Conflict, InvalidRequest
from core.settings import LimitSettings
from scheduler.flows.news import StepNews
from scheduler.flows.pause import pause
from scheduler.flows.steps import FlowSteps, Refusal, StepRequest
from scheduler.flows.tables import StepInfo, StepType
from scheduler.payloads import PayloadStore
from scheduler.runs.rows import attempts
from scheduler.runs.writes import Writer
from scheduler.uds_http import Request, Response

if TYPE_CHECKING:
    from scheduler.agent import Instance

Route = Callable[["Instance", Request], Awaitable[Response]]


def input_hash(value: Any) -> str:
    """The hash a step's input is compared by on replay: of its canonical JSON."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # a lone surrogate (valid in JSON text, not in UTF-8) is hashed as is rather than refused
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class FlowProtocol:
    """Answers a flow attempt's step requests from the step log."""

    def __init__(
        self,
        writer: Writer,
        limits: LimitSettings,
        payloads: PayloadStore,
        on_paused: Callable[[str], None],
    ) -> None:
        self._writer = writer
        self._steps = FlowSteps(writer.db, limits, payloads)
        self._news = StepNews(writer)
        self._on_paused = on_paused

    async def close(self) -> None:
        """Tells the step news still to come now (this process stops serving flows)."""
        await self._news.close()

    def routes(self) -> dict[tuple[str, str], Route]:
        return {
            ("POST", "/flow-step"): self._step,
            ("POST", "/flow-step-record"): self._record,
            ("POST", "/flow-step-failed"): self._failed,
            ("POST", "/flow-step-done"): self._done,
            ("POST", "/flow-step-child"): self._child,
            ("POST", "/flow-pause"): self._pause,
        }

    async def _step(self, instance: Instance, request: Request) -> Response:
        run_id, attempt_id = _running(instance)
        step = _step_request(_body(request))
        number = await self._attempt_number(instance, attempt_id)
        begun = await self._steps.begin(run_id, number, step)
        if isinstance(begun, Refusal):
            return _refused(begun)
        self._news.written(run_id)
        limits = self._steps.limits
        return Response.json(
            200,
            {
                **_answer(begun.step, await self._steps.result(begun.step)),
                "last_seq": begun.last_seq,
                "max_steps": limits.max_flow_steps,
                "max_payload_chars": limits.max_flow_payload_chars,
            },
        )

    async def _record(self, instance: Instance, request: Request) -> Response:
        run_id, attempt_id = _running(instance)
        body = _body(request)
        step = _step_request(body)
        if step.type is not StepType.INLINE:
            raise InvalidRequest("only an inline step is recorded with its result")
        started_at = _time(body.get("started_at"), "started_at")
        if "result" not in body or started_at is None:
            raise InvalidRequest("expected {seq, type, name, input, result, started_at}")
        number = await self._attempt_number(instance, attempt_id)
        result_json = json.dumps(body["result"])
        recorded = await self._steps.record(run_id, number, step, result_json, started_at)
        if isinstance(recorded, Refusal):
            return _refused(recorded)
        self._news.written(run_id)
        return Response.json(200, _answer(recorded, await self._steps.result(recorded)))

    async def _failed(self, instance: Instance, request: Request) -> Response:
        run_id, attempt_id = _running(instance)
        body = _body(request)
        error = body.get("error")
        started = body.get("started_at")
        started_at = _aware_time(started) if isinstance(started, str) else None
        if not isinstance(error, str) or started_at is None:
            raise InvalidRequest("expected {seq, error, started_at (ISO 8601 with offset), final}")
        await self._steps.record_failure(
            run_id,
            _seq(body),
            flow_attempt=await self._attempt_number(instance, attempt_id),
            error=error,
            started_at=started_at,
            final=body.get("final") is True,
        )
        self._news.written(run_id)
        return Response.json(200, {})

    async def _done(self, instance: Instance, request: Request) -> Response:
        run_id, attempt_id = _running(instance)
        body = _body(request)
        if "result" not in body:
            raise InvalidRequest("expected {seq, result}")
        number = await self._attempt_number(instance, attempt_id)
        refused = await self._steps.succeed(run_id, _seq(body), json.dumps(body["result"]), number)
        if refused is not None:
            return _refused(refused)
        self._news.written(run_id)
        return Response.json(200, {})

    async def _child(self, instance: Instance, request: Request) -> Response:
        run_id, _ = _running(instance)
        body = _body(request)
        child = body.get("task_run_id")
        if not isinstance(child, str) or not child:
            raise InvalidRequest("expected {seq, task_run_id}")
        await self._steps.set_child(run_id, _seq(body), child)
        self._news.written(run_id)
        return Response.json(200, {})

    async def _pause(self, instance: Instance, request: Request) -> Response:
        run_id, attempt_id = _running(instance)
        step = await self._steps.step(run_id, _seq(_body(request)))
        if step.type is not StepType.SLEEP or step.wake_at is None:
            raise Conflict(f"step {step.seq} of flow run {run_id} is not a sleep")
        if not await pause(self._writer, attempt_id, run_id, step.wake_at):
            raise Conflict(f"flow run {run_id} is no longer running: it cannot pause")
        self._on_paused(attempt_id)
        return Response.json(200, {"wake_at": step.wake_at.isoformat()})

    async def _attempt_number(self, instance: Instance, attempt_id: str) -> int:
        if instance.admitted is not None:
            return instance.admitted.attempt
        number = await self._writer.db.read(
            lambda conn: conn.scalar(select(attempts.c.number).where(attempts.c.id == attempt_id))
        )
        return int(number or 0)


def _refused(refusal: Refusal) -> Response:
    """A flow rule fails the run: the worker raises it, and the run fails without retry."""
    answer = {"status": "refused", "message": refusal.message, "details": refusal.details}
    return Response.json(200, answer)


def _running(instance: Instance) -> tuple[str, str]:
    if instance.attempt_id is None or instance.run_id is None:
        raise Conflict("this instance registers tasks; it runs none")
    return instance.run_id, instance.attempt_id


def _body(request: Request) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def _step_request(body: dict[str, Any]) -> StepRequest:
    try:
        step_type = StepType(str(body.get("type")))
    except ValueError:
        raise InvalidRequest("type must be inline, detached or sleep") from None
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("name must be a non-empty string")
    seconds = body.get("sleep_seconds", 0)
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise InvalidRequest("sleep_seconds must be a number")
    value = body.get("input")
    return StepRequest(
        seq=_seq(body),
        type=step_type,
        name=name,
        input_hash=input_hash(value),
        input_json=json.dumps(value),
        sleep_seconds=float(seconds),
        wake_at=_time(body.get("wake_at"), "wake_at"),
    )


def _time(raw: Any, field: str) -> datetime | None:
    """`raw` as a time with its offset; None when absent; InvalidRequest naming `field`."""
    if raw is None:
        return None
    when = _aware_time(raw) if isinstance(raw, str) else None
    if when is None:
        raise InvalidRequest(f"{field} must be an ISO 8601 time with its offset")
    return when


def _aware_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _seq(body: dict[str, Any]) -> int:
    seq = body.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise InvalidRequest("seq must be an integer from 1")
    return seq


def _answer(step: StepInfo, result: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": step.status.value, "failures": len(step.attempts)}
    if step.status.value == "succeeded":
        answer["result"] = result
    if step.wake_at is not None:
        answer["wake_at"] = step.wake_at.isoformat()
    if step.child_run_id is not None:
        answer["task_run_id"] = step.child_run_id
    return answer
