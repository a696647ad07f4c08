"""Retries, timeouts, cancellation and crashed workers, with real processes and signals."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
from pathlib import Path

import pytest

from core.domain import AttemptOutcome, RunStatus
from core.errors import InvalidRequest
from scheduler.runtime import Runtime
from tests.integration.engine_fixtures import WS, open_engine, run_to_end
from tests.integration.host_processes import find

pytestmark = pytest.mark.anyio


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False  # gone (and reaped), maybe between two looks
    return stat.split(") ")[1][0] != "Z"


async def _file(path: Path, timeout: float = 30) -> str:
    async with asyncio.timeout(timeout):
        while not path.exists() or not path.read_text():
            await asyncio.sleep(0.05)
    return path.read_text()


async def _until_gone(pid: int, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while _alive(pid):
            await asyncio.sleep(0.05)


async def test_retries_follow_the_backoff(database_url: str, tmp_path: Path, scratch: Path) -> None:
    async with open_engine(tmp_path, database_url=database_url) as runtime:
        run = await run_to_end(runtime, "wf/flaky", ["a", 2])
    assert run.status is RunStatus.SUCCEEDED
    assert run.results == ["ok after 2 failures"]
    assert [a.outcome for a in run.attempts] == [
        AttemptOutcome.ERROR,
        AttemptOutcome.ERROR,
        AttemptOutcome.OK,
    ]
    assert run.attempts[0].error == "RuntimeError: failure 1 of 2"
    assert (
        run.attempts[0].stack_trace
        and "RuntimeError: failure 1 of 2" in run.attempts[0].stack_trace
    )
    # wait_duration_ms=300, factor 2: each retry is due exactly 0.3 s, then 0.6 s, after the
    # attempt before it ended (read from the stored times, not from how long the test waited)
    waits, lags = [], []
    for before, retry in itertools.pairwise(run.attempts):
        assert before.ended_at is not None and retry.started_at is not None
        waits.append((retry.enqueued_at - before.ended_at).total_seconds())
        lags.append((retry.started_at - retry.enqueued_at).total_seconds())
    assert waits == pytest.approx([0.3, 0.6], abs=1e-6)
    assert min(lags) >= 0, "no retry starts before it is due"
    assert run.retries == 2


async def test_retries_exhausted_fail_the_run_with_the_last_error(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, database_url=database_url) as runtime:
        run = await run_to_end(runtime, "wf/flaky", ["b", 10])
    assert run.status is RunStatus.FAILED
    assert len(run.attempts) == 4
    assert run.error == "RuntimeError: failure 4 of 10"
    assert run.stack_trace and "RuntimeError" in run.stack_trace


@pytest.mark.slow
async def test_timeout_kills_the_task_and_its_process_group(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, database_url=database_url) as runtime:
        run = await runtime.service.create_run(WS, "wf/sleeps_with_child", ["t"])
        # host pids: the tasks report themselves as their own PID namespace numbers them
        worker, helper = map(find, (await _file(scratch / "pids-t")).split())
        done = await runtime.service.wait_run(WS, run.id, 30)
        assert done.status is RunStatus.FAILED
        assert done.attempts[0].outcome is AttemptOutcome.TIMEOUT
        assert done.error == "task sleeps_with_child timed out after 2 s"
        await _until_gone(worker)
        await _until_gone(helper)


@pytest.mark.slow
async def test_cancel_mid_tree_kills_that_subtree_only(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, database_url=database_url) as runtime:
        root = await runtime.service.create_run(WS, "wf/two_branches", ["a", "b"])
        pid_a = find(await _file(scratch / "pid-a"))
        pid_b = find(await _file(scratch / "pid-b"))
        from core.domain import RunFilter

        branches = await runtime.service.list_runs(
            WS, RunFilter(parent_id=root.id), cursor=None, limit=10
        )
        by_input = {}
        for branch in branches.items:
            full = await runtime.service.get_run(WS, branch.id)
            by_input[full.input[0]] = full
        canceled = await runtime.service.cancel_run(WS, by_input["a"].id)
        assert canceled.status is RunStatus.CANCELED
        await _until_gone(pid_a)
        assert _alive(pid_b)
        (scratch / "release-b").write_text("go")
        done = await runtime.service.wait_run(WS, root.id, 30)
        assert done.status is RunStatus.SUCCEEDED
        first, second = done.results or []
        assert first.startswith("error: ") and "canceled" in first
        assert second == "released b"
        grandchildren = await runtime.service.list_runs(
            WS, RunFilter(parent_id=by_input["a"].id), cursor=None, limit=10
        )
        assert [g.status for g in grandchildren.items] == [RunStatus.CANCELED]


@pytest.mark.slow
async def test_cancelled_parent_cannot_start_children(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    from core.errors import Conflict

    async with open_engine(tmp_path, database_url=database_url) as runtime:
        root = await runtime.service.create_run(WS, "wf/branch", ["c"])
        await _file(scratch / "pid-c")
        await runtime.service.cancel_run(WS, root.id)
        attempt_id = await _attempt_id(runtime, root.id)
        with pytest.raises(Conflict):
            await runtime.transitions.create_child(attempt_id, "leaf", "[1]", None)


async def _unchecked(runtime: Runtime, task_name: str, input_text: str) -> str:
    """A run created past the server's input check, as a child's input reaches its worker."""
    run = await runtime.transitions.create_root(
        WS, f"wf/{task_name}", json.loads(input_text), input_text, None, check_input=False
    )
    assert run is not None
    return run.id


async def _attempt_id(runtime: Runtime, run_id: str) -> str:
    from sqlalchemy import select

    from core.db.models import Attempt

    async with runtime.store.sessions() as session:
        found = await session.scalar(select(Attempt.id).where(Attempt.run_id == run_id))
    assert found is not None
    return found


async def test_sigkilled_worker_is_retried(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, database_url=database_url) as runtime:
        run = await runtime.service.create_run(WS, "wf/dies_once", ["k"])
        pid = find(await _file(scratch / "pid-k"))
        os.kill(pid, signal.SIGKILL)
        done = await runtime.service.wait_run(WS, run.id, 30)
    assert done.status is RunStatus.SUCCEEDED
    assert done.results == ["second attempt"]
    first = done.attempts[0]
    assert first.outcome is AttemptOutcome.EXITED_WITHOUT_RESULT
    assert first.exit_code == -signal.SIGKILL
    assert "before completing the task" in (first.error or "")


async def test_bad_calls_fail_the_run_with_a_clear_error(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, database_url=database_url) as runtime:
        # the server refuses input that does not fit the registered parameters ...
        with pytest.raises(InvalidRequest, match="'wf/leaf' cannot take this input: takes 1 in"):
            await runtime.service.create_run(WS, "wf/leaf", [1, 2])
        with pytest.raises(InvalidRequest, match="n: expected int, got 'x'"):
            await runtime.service.create_run(WS, "wf/leaf", ["x"])
        # ... and the worker refuses what reaches it unchecked (as a child's input does)
        arity = await runtime.service.wait_run(WS, await _unchecked(runtime, "leaf", "[1,2]"), 60)
        flaky = await _unchecked(runtime, "flaky", '["x","1"]')
        flaky_arity = await runtime.service.wait_run(WS, flaky, 60)
        output = await run_to_end(runtime, "wf/unserialisable", [])
        quiet = await run_to_end(runtime, "wf/exits_quietly", [])
        nan = await run_to_end(runtime, "wf/not_a_number", [])
        keywords = await run_to_end(runtime, "wf/leaf", {"n": 41})
    assert arity.status is RunStatus.FAILED
    assert len(flaky_arity.attempts) == 1, "input that does not fit is not retried"
    assert flaky_arity.status is RunStatus.FAILED
    assert arity.error == (
        "InvalidInputError: task 'leaf' cannot take this input: takes 1 input, got 2"
    )
    assert "failures: expected int, got '1'" in (flaky_arity.error or "")
    assert output.status is RunStatus.FAILED
    assert "JSON" in (output.error or "") or "serializ" in (output.error or "")
    assert quiet.status is RunStatus.FAILED
    assert quiet.attempts[0].outcome is AttemptOutcome.EXITED_WITHOUT_RESULT
    assert quiet.attempts[0].exit_code == 0
    assert nan.status is RunStatus.SUCCEEDED
    assert nan.results is not None and nan.results[0] != nan.results[0]
    assert keywords.results == [42]
