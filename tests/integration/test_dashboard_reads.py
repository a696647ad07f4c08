"""The engine's reads behind the dashboard: a tree's history, the queue with reasons, summaries."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from app.dashboard.waterfall import waterfall
from core.domain import RunStatus
from scheduler.runs.log_times import line_times
from scheduler.runs.queue import WaitReason
from scheduler.runs.rows import attempts
from scheduler.runtime import Runtime
from tests.integration.engine_fixtures import WS, open_engine, run_to_end

pytestmark = pytest.mark.anyio


async def test_a_fan_out_tree_history_and_its_waterfall(database_url: str, tmp_path: Path) -> None:
    async with open_engine(tmp_path, database_url=database_url, max_concurrency=2) as runtime:
        root = await run_to_end(runtime, "wf/fan", [1])
        service = runtime.service
        history = await service.tree_history(WS, root.id, 100)
        assert history.total == 7 and not history.cut
        assert [r.id for r in history.runs] == sorted(r.id for r in history.runs)
        assert all(r.input is None and r.stack_trace is None for r in history.runs)
        kinds = [kind for kind, _ in history.waits[root.id][0]]
        assert kinds[0] == "waiting" and "resumed" in kinds, "the root waited on its children"

        board = waterfall(history)
        assert board is not None and not board.open
        assert [(r.run.task_name, r.depth) for r in board.rows] == [
            ("fan", 0),
            *[(name, depth) for _ in range(3) for name, depth in (("middle", 1), ("leaf", 2))],
        ]
        fan_segments = [s.kind for s in board.rows[0].segments]
        assert "waiting" in fan_segments and fan_segments[-1] == "ok"
        assert board.span_ms >= max(s.end_ms or 0 for r in board.rows for s in r.segments)

        first = await service.tree_history(WS, root.id, 3, include=history.runs[-1].id)
        assert first.total == 7 and first.cut
        assert [r.id for r in first.runs] == [r.id for r in history.runs[:3]] + [
            history.runs[-1].id
        ]
        assert await service.tree_history("wsp-other", root.id, 100) == type(history)(
            root.id, [], 0, {}
        )


async def test_run_summaries_and_id_prefixes(database_url: str, tmp_path: Path) -> None:
    async with open_engine(tmp_path, database_url=database_url) as runtime:
        a = await run_to_end(runtime, "wf/leaf", [1])
        b = await run_to_end(runtime, "wf/leaf", [2])
        found = await runtime.service.run_summaries(WS, [a.id, "trn-nope", b.id])
        assert [r.id for r in found] == [b.id, a.id]
        assert found[0].status is RunStatus.SUCCEEDED and found[0].results is None
        assert await runtime.service.run_summaries("wsp-other", [a.id]) == []
        assert await runtime.service.run_ids_starting(WS, a.id, 5) == [a.id]
        assert await runtime.service.run_ids_starting(WS, "trn-", 5) == [a.id, b.id]
        for bad in ("", "trn-%", "trn-_", "trn-'"):
            assert await runtime.service.run_ids_starting(WS, bad, 5) == []


async def until(runtime: Runtime, run_id: str, status: RunStatus, attempts: int = 1) -> None:
    async with asyncio.timeout(30), runtime.store.bus.subscribe() as changes:
        while True:
            run = await runtime.service.get_run(WS, run_id)
            if run.status is status and len(run.attempts) >= attempts:
                return
            await changes.get()


async def test_the_queue_in_admission_order_with_reasons(
    database_url: str, tmp_path: Path, scratch: Path
) -> None:
    async with open_engine(tmp_path, database_url=database_url, max_concurrency=2) as runtime:
        service = runtime.service
        alone = await service.create_run(WS, "wf/hold_alone", ["a"])
        await until(runtime, alone.id, RunStatus.RUNNING)
        second = await service.create_run(WS, "wf/hold_alone", ["b"])  # its task is at its limit
        holder = await service.create_run(WS, "wf/hold", ["c"])
        await until(runtime, holder.id, RunStatus.RUNNING)
        leaf = await service.create_run(WS, "wf/leaf", [1])  # every slot is taken
        later = await service.create_run(WS, "wf/retries_later", ["d"])
        view = await service.queue(WS)
        assert (view.limit, view.active, view.free) == (2, 2, 0)
        assert {s.run.id for s in view.slots} == {alone.id, holder.id}
        # roots by id: ids made in the same millisecond are in no particular order
        assert [(q.run.id, q.reason) for q in view.queued] == [
            (second.id, WaitReason.TASK_LIMIT),
            *[(r, WaitReason.WORKSPACE_LIMIT) for r in sorted([leaf.id, later.id])],
        ]
        assert (view.queued[0].busy, view.queued[0].concurrency) == (1, 1)
        assert view.pending == 3 and view.oldest_run_id == second.id

        (scratch / "release-c").write_text("go")  # a slot frees: the leaf, then `later`, run
        await until(runtime, later.id, RunStatus.PENDING, attempts=1)
        await until(runtime, leaf.id, RunStatus.SUCCEEDED)
        view = await service.queue(WS)
        assert [(q.run.id, q.reason) for q in view.queued] == [(second.id, WaitReason.TASK_LIMIT)]
        assert [(q.run.id, q.reason) for q in view.backoff] == [(later.id, WaitReason.BACKOFF)]
        assert view.backing_off == 1 and view.queued[0].since == second.created_at

        await runtime.transitions.set_waiting_reason(
            (await _attempt_id(runtime, alone.id)), "no node has room: cpu exhausted"
        )
        view = await service.queue(WS)
        [slot] = view.slots
        assert slot.reason is WaitReason.CAPACITY
        assert slot.attempt.waiting_reason == "no node has room: cpu exhausted"
        for run in (alone, second, later):
            await service.cancel_run(WS, run.id)


async def _attempt_id(runtime: Runtime, run_id: str) -> str:
    query = select(attempts.c.id).where(attempts.c.run_id == run_id)
    attempt_id = await runtime.service.db.read(
        lambda conn: conn.scalar(query.order_by(attempts.c.number.desc()))
    )
    assert attempt_id is not None
    return str(attempt_id)


async def test_the_log_clock_stamps_lines_as_they_arrive(database_url: str, tmp_path: Path) -> None:
    async with open_engine(tmp_path, database_url=database_url) as runtime:
        run = await run_to_end(runtime, "wf/talks", [4, 0.6])
        assert run.status is RunStatus.SUCCEEDED
        [attempt] = run.attempts
        assert attempt.started_at is not None and attempt.ended_at is not None
        stamps = await runtime.service.log_stamps(WS, run.id, 0)
        assert len(stamps) >= 3, stamps
        assert [o for o, _ in stamps] == sorted({o for o, _ in stamps}), "growing offsets"
        chunk = await runtime.service.read_log(WS, run.id, 0, 0)
        times = line_times(chunk.data, stamps, attempt.ended_at)
        lines = [n for n, line in enumerate(chunk.data.splitlines()) if line.startswith(b"line")]
        assert len(lines) == 4
        at = [times[n] for n in lines]
        assert all(t is not None for t in at)
        first, last = at[0], at[-1]
        assert first is not None and last is not None
        # printed 0.6 s apart: seen 1.8 s apart, give or take the clock's quarter second
        assert 1.3 <= (last - first) / 1000 <= 2.4, at
        start_ms = attempt.started_at.timestamp() * 1000
        end_ms = attempt.ended_at.timestamp() * 1000
        assert start_ms <= first <= last <= end_ms + 500
