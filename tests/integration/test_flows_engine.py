"""Flows through real worker processes: replay, durable sleep, retries in place, a SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.domain import AttemptOutcome, RunFilter, RunStatus
from scheduler.flows.steps import FlowSteps
from scheduler.flows.tables import flow_steps
from scheduler.runs.rows import attempts
from scheduler.runtime import Runtime
from tests.integration.engine_fixtures import WS, max_active_attempts, open_engine, run_to_end

pytestmark = pytest.mark.anyio


def _log(runtime: Runtime) -> FlowSteps:
    return FlowSteps(
        runtime.transitions.writer.db, runtime.settings.limits, runtime.transitions.payloads
    )


async def _payloads(runtime: Runtime, run_id: str, count: int) -> list[tuple[Any, Any]]:
    """(input, result) of the steps 1..count, read wherever they are kept."""
    details = [await _log(runtime).details(run_id, seq) for seq in range(1, count + 1)]
    return [(d.input, d.result) for d in details]


def _runs(scratch: Path, name: str) -> int:
    path = scratch / f"{name}.ran"
    return len(path.read_text().splitlines()) if path.exists() else 0


async def test_a_flow_of_every_kind_of_step(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, "flows", database_url=database_url) as runtime:
        run = await run_to_end(runtime, "wf/every_step", [5])
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert run.results == [{"a": 10, "b": 11, "c": 111}]
        # the sleep ended the first attempt; the second replayed and finished
        assert [a.outcome for a in run.attempts] == [AttemptOutcome.PAUSED, AttemptOutcome.OK]
        steps = await _log(runtime).steps(run.id)
        assert [(s.seq, s.type.value, s.name, s.status.value) for s in steps] == [
            (1, "inline", "double", "succeeded"),
            (2, "detached", "add_one", "succeeded"),
            (3, "sleep", "sleep", "succeeded"),
            (4, "inline", "flaky", "succeeded"),
        ]
        # the attempt that completed each: the sleep was over when the second reached it
        assert [s.flow_attempt for s in steps] == [0, 0, 1, 1]
        assert steps[2].wake_at is not None and steps[3].started_at >= steps[2].wake_at
        assert (await _payloads(runtime, run.id, 4))[3] == ([11], 111)
        assert [(t["attempt"], t["flowRunAttempt"]) for t in steps[3].attempts] == [(1, 1), (2, 1)]
        assert steps[3].attempts[0]["error"] == "RuntimeError: flaky failure 11"
        # the detached step's child is a normal task run of the flow's run
        child = await runtime.service.get_run(WS, steps[1].child_run_id or "")
        assert (child.task_name, child.parent_id, child.status) == (
            "add_one",
            run.id,
            RunStatus.SUCCEEDED,
        )
        assert child.results == [11]
        # completed steps ran once, though the flow ran twice from the top
        assert _runs(scratch, "double") == 1
        assert _runs(scratch, "flaky") == 3


async def test_sigkill_mid_step_replays_completed_steps_without_running_them(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, "flows", database_url=database_url) as runtime:
        created = await runtime.service.create_run(WS, "wf/killed_mid_step", [1])
        async with asyncio.timeout(60):
            while not (scratch / "slow.waiting").exists():
                await asyncio.sleep(0.05)
        # the instance's own pid (its body sees another, in its sandbox's pid namespace)
        handle = await runtime.transitions.writer.db.read(
            lambda conn: conn.scalar(
                select(attempts.c.handle).where(attempts.c.run_id == created.id)
            )
        )
        assert isinstance(handle, str), "the attempt's handle is recorded before its body runs"
        os.killpg(int(json.loads(handle)["pid"]), signal.SIGKILL)
        run = await runtime.service.wait_run(WS, created.id, 60)
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert run.results == [5]  # ((1 + 1) * 3) - 1
        assert len(run.attempts) == 2 and run.attempts[0].outcome is not AttemptOutcome.OK
        assert (_runs(scratch, "first"), _runs(scratch, "slow"), _runs(scratch, "last")) == (
            1,
            2,
            1,
        )
        steps = await _log(runtime).steps(run.id)
        assert [(s.name, s.flow_attempt) for s in steps] == [("first", 0), ("slow", 1), ("last", 1)]


async def test_a_flow_changed_between_attempts_fails_with_a_determinism_error(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, "flows", database_url=database_url) as runtime:
        created = await runtime.service.create_run(WS, "wf/changes_between_attempts", [2])
        async with asyncio.timeout(30):
            while True:
                run = await runtime.service.get_run(WS, created.id)
                if run.attempts and run.attempts[0].outcome is AttemptOutcome.PAUSED:
                    break
                await asyncio.sleep(0.05)
        (scratch / "changed").touch()
        run = await runtime.service.wait_run(WS, created.id, 30)
        assert run.status is RunStatus.FAILED
        assert len(run.attempts) == 2, "a determinism error is not retried"
        assert "flow_determinism_error: step 2 was recorded as inline:first" in (run.error or "")
        details = await _log(runtime).error_details(run.id)
        assert details == {
            "code": "flow_determinism_error",
            "message": "flow_determinism_error: step 2 was recorded as inline:first, "
            "this attempt reached inline:last",
            "flowAttempt": 1,
            "kind": "type",
            "seq": 2,
            "expected": "inline:first",
            "actual": "inline:last",
        }
        runs = await runtime.service.list_runs(WS, RunFilter(), cursor=None, limit=10)
        assert len(runs.items) == 1


async def test_a_durable_sleep_holds_no_slot(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    """At a workspace limit of 1, a task started while the flow sleeps ends before it wakes."""
    async with open_engine(
        tmp_path, "flows", database_url=database_url, max_concurrency=1
    ) as runtime:
        flow = await runtime.service.create_run(WS, "wf/naps", [4])
        async with asyncio.timeout(30):
            while True:
                run = await runtime.service.get_run(WS, flow.id)
                if run.attempts and run.attempts[0].outcome is AttemptOutcome.PAUSED:
                    break
                await asyncio.sleep(0.05)
        task = await run_to_end(runtime, "wf/add_one", [1])
        assert task.status is RunStatus.SUCCEEDED
        done = await runtime.service.wait_run(WS, flow.id, 30)
        assert done.status is RunStatus.SUCCEEDED and done.results == ["4"]
        woke = done.attempts[1].started_at
        assert task.completed_at is not None and woke is not None
        assert task.completed_at < woke
        assert await max_active_attempts(runtime) == 1


async def test_a_cancelled_sleeping_flow_ends_canceled_with_its_children(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, "flows", database_url=database_url) as runtime:
        flow = await runtime.service.create_run(WS, "wf/sleeps_beside_a_child", [600])
        async with asyncio.timeout(30):
            while True:
                run = await runtime.service.get_run(WS, flow.id)
                if run.attempts and run.attempts[0].outcome is AttemptOutcome.PAUSED:
                    break
                await asyncio.sleep(0.05)
        children = await runtime.service.list_runs(
            WS, RunFilter(parent_id=flow.id), cursor=None, limit=10
        )
        [child] = children.items
        assert child.task_name == "waits" and not child.status.terminal
        await runtime.service.cancel_run(WS, flow.id)
        done = await runtime.service.wait_run(WS, flow.id, 10)
        assert done.status is RunStatus.CANCELED
        assert (await runtime.service.wait_run(WS, child.id, 30)).status is RunStatus.CANCELED


@pytest.mark.parametrize(
    ("flow", "limits", "details"),
    [
        (
            "fails_until_fixed",
            {"max_flow_steps": 1},
            {"code": "flow_step_limit_exceeded", "seq": 2, "limit": 1, "value": 2},
        ),
        (
            "every_step",  # the detached step's input, [10]
            {"max_flow_payload_chars": 3},
            {"code": "flow_payload_too_large", "seq": 2, "limit": 3, "value": 4},
        ),
        (
            "every_step",  # [5] and 10, then [10] and 11: 11 characters
            {"max_flow_history_chars": 8},
            {"code": "flow_history_too_large", "seq": 2, "limit": 8, "value": 11},
        ),
        (
            "doubles_twice",  # [5] and 10, then [10] and 20 in one /flow-step-record: 11
            {"max_flow_history_chars": 8},
            {"code": "flow_history_too_large", "seq": 2, "limit": 8, "value": 11},
        ),
        (
            "doubles_twice",  # [10] is past the limit: asked for before it runs, and refused
            {"max_flow_payload_chars": 3},
            {"code": "flow_payload_too_large", "seq": 2, "limit": 3, "value": 4},
        ),
    ],
)
async def test_the_limits_fail_a_flow_with_their_codes(
    database_url: str,
    tmp_path: Path,
    scratch: Path,
    flow: str,
    limits: dict[str, Any],
    details: dict[str, object],
) -> None:
    async with open_engine(tmp_path, "flows", database_url=database_url, **limits) as runtime:
        run = await run_to_end(runtime, f"wf/{flow}", [5])
        assert run.status is RunStatus.FAILED
        assert len(run.attempts) == 1, "a flow rule is not retried"
        stored = await _log(runtime).error_details(run.id)
        assert stored is not None
        assert {k: stored[k] for k in ("code", "seq", "limit", "value")} == details
        assert str(details["code"]) in (run.error or "")


async def test_steps_started_together_keep_their_seq_across_attempts(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, "flows", database_url=database_url) as runtime:
        run = await run_to_end(runtime, "wf/gathers", [1])
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert run.results == ["a", "b", "c", "d"]  # a list result travels as is
        assert [a.outcome for a in run.attempts] == [AttemptOutcome.PAUSED, AttemptOutcome.OK]
        steps = await _log(runtime).steps(run.id)
        # numbered in the order they were called, whatever order they finished in
        assert [i for i, _ in await _payloads(runtime, run.id, 5)] == [
            ["a", 0.3],
            ["b", 0.0],
            ["c", 0.1],
            [0.2],
            ["d", 0.0],
        ]
        a, b, c = (s.completed_at for s in steps[:3])
        assert a is not None and b is not None and c is not None
        assert b < c < a, "they finished in another order than they were called"


async def test_sleep_until_a_time_wakes_at_that_time(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, "flows", database_url=database_url) as runtime:
        when = datetime.now(UTC) + timedelta(seconds=1.5)
        run = await run_to_end(runtime, "wf/sleeps_until", [when.isoformat()])
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert [a.outcome for a in run.attempts] == [AttemptOutcome.PAUSED, AttemptOutcome.OK]
        steps = await _log(runtime).steps(run.id)
        assert steps[0].wake_at == when
        woke = run.attempts[1].started_at
        assert woke is not None and woke >= when


async def test_a_new_inline_step_is_recorded_with_its_result(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, "flows", database_url=database_url) as runtime:
        run = await run_to_end(runtime, "wf/doubles_twice", [5])
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert run.results == [20]
        steps = await _log(runtime).steps(run.id)
        assert [(s.seq, s.type.value, s.name) for s in steps] == [
            (1, "inline", "double"),
            (2, "inline", "double"),
        ]
        assert await _payloads(runtime, run.id, 2) == [([5], 10), ([10], 20)]
        second = steps[1]
        assert second.status.value == "succeeded" and second.attempts == []
        assert second.started_at is not None and second.completed_at is not None
        assert steps[0].completed_at is not None
        assert steps[0].completed_at <= second.started_at <= second.completed_at
        assert (scratch / "double.ran").read_text().splitlines() == ["x", "x"], "each ran once"


async def test_large_step_payloads_are_kept_in_the_blob_store_and_replayed_from_it(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, "flows", database_url=database_url) as runtime:
        run = await run_to_end(runtime, "wf/large_payloads", [2])
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert run.results == [160_000]
        assert [a.outcome for a in run.attempts] == [AttemptOutcome.PAUSED, AttemptOutcome.OK]
        assert _runs(scratch, "pad") == 1, "the second attempt replayed the blob-held result"
        padded = "ab" * 80_000
        assert await _payloads(runtime, run.id, 3) == [
            (["ab" * 40_000, 2], padded),
            ([0.1], None),
            ([padded], 160_000),
        ]
        rows = await runtime.transitions.writer.db.read(
            lambda conn: conn.execute(
                select(
                    flow_steps.c.input_json,
                    flow_steps.c.input_key,
                    flow_steps.c.result_json,
                    flow_steps.c.result_key,
                    flow_steps.c.payload_chars,
                ).order_by(flow_steps.c.seq)
            ).all()
        )
        # attempts are numbered from 0: the first wrote step 1, the second step 3
        assert [tuple(row) for row in rows] == [
            (
                None,
                f"runs/{run.id}/steps/1/input.0.json",
                None,
                f"runs/{run.id}/steps/1/result.0.json",
                len(json.dumps(["ab" * 40_000, 2])) + len(json.dumps(padded)),
            ),
            ("[0.1]", None, None, None, 5),
            (
                None,
                f"runs/{run.id}/steps/3/input.1.json",
                "160000",
                None,
                len(json.dumps([padded])) + 6,
            ),
        ]
        blob = runtime.settings.data_dir / "blobs" / f"runs/{run.id}/steps/1/result.0.json"
        assert json.loads(blob.read_text()) == padded
