"""What a flow's steps send on the instance socket: a new inline step that ends within
`ANNOUNCE_AFTER_S` is one request (`/flow-step-record`), every other case announces it first.

The client below answers as the platform's flow routes do (scheduler/flows/protocol.py) for a
step log it is told about; the routes themselves are exercised in tests/integration.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from conveyor import FlowContext, FlowLimitError, Retry
from conveyor._flows import context as flow_context
from conveyor._uds import SocketClient

pytestmark = pytest.mark.anyio


class StepLog:
    """Records each request; `/flow-step` answers from `recorded` (seq → result)."""

    def __init__(self, recorded: dict[int, Any] | None = None, **limits: int) -> None:
        self.recorded = dict(recorded or {})
        self.limits = {"max_steps": 100, "max_payload_chars": 1000, **limits}
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.announced: dict[int, asyncio.Event] = {}

    def announced_event(self, seq: int) -> asyncio.Event:
        return self.announced.setdefault(seq, asyncio.Event())

    async def request(self, method: str, target: str, body: dict[str, Any] | None = None) -> Any:
        assert method == "POST" and body is not None
        self.sent.append((target, body))
        if target != "/flow-step":
            return {}
        seq = body["seq"]
        if seq > self.limits["max_steps"]:
            details = {"code": "flow_step_limit_exceeded", "message": "over", "seq": seq}
            return {"status": "refused", "message": "over", "details": details}
        self.announced_event(seq).set()
        last = max([seq, *self.recorded])
        if seq in self.recorded:
            answer = {"status": "succeeded", "result": self.recorded[seq], "failures": 0}
        else:
            answer = {"status": "running", "failures": 0}
        return {**answer, "last_seq": last, **self.limits}


def flow(log: StepLog) -> FlowContext:
    return FlowContext(cast(SocketClient, log), flow_name="f", run_id="trn-1", attempt=0)


def targets(log: StepLog) -> list[tuple[str, int]]:
    return [(target, body["seq"]) for target, body in log.sent]


async def double(x: int) -> int:
    return 2 * x


async def test_after_the_first_step_a_new_inline_step_is_one_request() -> None:
    log = StepLog()
    ctx = flow(log)
    assert await ctx.step(double, 1) == 2
    assert await ctx.step(double, 2) == 4
    assert await ctx.step(double, 3) == 6
    assert targets(log) == [
        ("/flow-step", 1),
        ("/flow-step-done", 1),
        ("/flow-step-record", 2),
        ("/flow-step-record", 3),
    ]
    body = log.sent[2][1]
    started = body.pop("started_at")
    assert isinstance(started, str) and started.endswith("+00:00")
    assert body == {"seq": 2, "type": "inline", "name": "double", "input": [2], "result": 4}


async def test_a_replay_asks_for_every_recorded_step_then_records_new_ones() -> None:
    log = StepLog(recorded={1: 2, 2: 4, 3: 6})
    ctx = flow(log)
    results = [await ctx.step(double, n) for n in (1, 2, 3, 4)]
    assert results == [2, 4, 6, 8]
    assert targets(log) == [
        ("/flow-step", 1),
        ("/flow-step", 2),
        ("/flow-step", 3),
        ("/flow-step-record", 4),
    ]


async def test_a_failed_try_announces_the_step_before_recording_the_failure() -> None:
    log = StepLog()
    ctx = flow(log)
    await ctx.step(double, 1)
    tries = []

    async def flaky(x: int) -> int:
        tries.append(x)
        if len(tries) == 1:
            raise ValueError("once")
        return x

    retry = Retry(max_retries=1, wait_duration_ms=0)
    assert await ctx.step(flaky, 7, retry=retry) == 7
    assert targets(log)[2:] == [
        ("/flow-step", 2),
        ("/flow-step-failed", 2),
        ("/flow-step-done", 2),
    ]
    assert log.sent[3][1]["error"] == "ValueError: once"


async def test_a_step_still_running_is_announced_and_then_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(flow_context, "ANNOUNCE_AFTER_S", 0.0)
    log = StepLog()
    ctx = flow(log)
    await ctx.step(double, 1)

    async def slow(x: int) -> int:
        await log.announced_event(2).wait()  # ends only once the platform has heard of it
        return x

    assert await ctx.step(slow, 5) == 5
    assert targets(log)[2:] == [("/flow-step", 2), ("/flow-step-done", 2)]


async def test_a_step_past_the_limits_asks_first_and_is_refused_before_it_runs() -> None:
    log = StepLog(max_steps=1)
    ctx = flow(log)
    await ctx.step(double, 1)
    ran = []

    async def effect(x: int) -> int:
        ran.append(x)
        return x

    with pytest.raises(FlowLimitError):
        await ctx.step(effect, 2)
    assert ran == [] and targets(log)[-1] == ("/flow-step", 2)


async def test_an_input_past_the_payload_limit_asks_first() -> None:
    log = StepLog(max_payload_chars=10)
    ctx = flow(log)
    await ctx.step(double, 1)
    big = "x" * 20

    async def echo(text: str) -> str:
        return text

    assert await ctx.step(echo, big) == big
    assert targets(log)[2:] == [("/flow-step", 2), ("/flow-step-done", 2)]


async def test_a_plain_function_is_a_step_too() -> None:
    log = StepLog()
    ctx = flow(log)

    def triple(x: int) -> int:
        return 3 * x

    total: int = await ctx.step(triple, 1) + await ctx.step(triple, 2)
    assert total == 9
    assert targets(log) == [("/flow-step", 1), ("/flow-step-done", 1), ("/flow-step-record", 2)]
