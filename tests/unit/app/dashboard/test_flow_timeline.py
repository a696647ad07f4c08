"""A flow run's steps on a time axis: each step's segments in milliseconds from the run's
creation, and the axis they are drawn on."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from app.dashboard.flow_runs import paused_until
from app.dashboard.flow_timeline import StepBoard, step_board
from app.dashboard.waterfall import Segment, segments
from core.domain import AttemptOutcome, RunStatus
from scheduler.flows.tables import StepStatus, StepType
from tests.unit.app.app_fakes import T0, make_attempt, make_run, make_step


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def failed_try(number: int, start: float, end: float, flow_attempt: int = 0) -> dict[str, Any]:
    return {
        "attempt": number,
        "flowRunAttempt": flow_attempt,
        "error": f"RuntimeError: try {number}",
        "startedAt": at(start).isoformat(),
        "completedAt": at(end).isoformat(),
    }


def drawn(board: StepBoard) -> list[list[tuple[str, int, int | None, int | None]]]:
    return [[(s.kind, s.start_ms, s.end_ms, s.attempt) for s in row.segments] for row in board.rows]


def test_a_finished_flow_draws_every_kind_of_step() -> None:
    paused = make_attempt(0, AttemptOutcome.PAUSED, started_at=at(0.5), ended_at=at(3))
    resumed = make_attempt(1, AttemptOutcome.OK, started_at=at(8.5), ended_at=at(10))
    run = make_run(created_at=T0, attempts=(paused, resumed), completed_at=at(10))
    steps = [
        make_step(
            4,
            StepType.INLINE,
            StepStatus.SUCCEEDED,
            started_at=at(8.6),
            completed_at=at(9),
            flow_attempt=1,
            attempts=[failed_try(1, 8.6, 8.7, 1), failed_try(2, 8.75, 8.8, 1)],
        ),
        make_step(
            1, StepType.INLINE, StepStatus.SUCCEEDED, started_at=at(1), completed_at=at(1.25)
        ),
        make_step(
            2,
            StepType.DETACHED,
            StepStatus.SUCCEEDED,
            started_at=at(1.5),
            completed_at=at(2.5),
            child_run_id="trn-child",
        ),
        make_step(
            3,
            StepType.SLEEP,
            StepStatus.SUCCEEDED,
            started_at=at(2.75),
            wake_at=at(7.75),
            completed_at=at(8.5),
            flow_attempt=1,
        ),
    ]
    board = step_board(run, steps, now=at(60))
    assert [row.step.seq for row in board.rows] == [1, 2, 3, 4]
    assert drawn(board) == [
        [("ok", 1000, 1250, 1)],
        [("ok", 1500, 2500, None)],  # a detached step's try is its task run
        [("sleep", 2750, 7750, None), ("queued", 7750, 8500, None)],
        [
            ("failed", 8600, 8700, 1),
            ("backoff", 8700, 8750, None),
            ("failed", 8750, 8800, 2),
            ("ok", 8800, 9000, 3),
        ],
    ]
    assert (board.t0_ms, board.now_ms, board.span_ms) == (int(T0.timestamp() * 1000), 60_000, 9000)
    assert not board.open
    assert board.ticks == ["0.00 s", "2.25 s", "4.50 s", "6.75 s", "9.00 s"]
    assert board.kinds == {"ok", "sleep", "queued", "failed", "backoff"}
    # a 50 ms try on a 9 s axis is drawn 50 wide; never thinner than 0.2 % of the axis (18)
    assert [board.width(s) for s in board.rows[3].segments] == [100, 50, 50, 200]
    assert board.width(Segment("ok", 0, 1, 1, "try")) == 18
    assert [row.status for row in board.rows] == ["succeeded", "succeeded", "woke", "succeeded"]
    assert [row.tries for row in board.rows] == [0, 0, 0, 2]
    assert [row.duration for row in board.rows] == ["0.25 s", "1.00 s", "5.00 s", "0.40 s"]
    assert board.rows[2].description == (
        "sleeping 5.00 s; queued 0.75 s; woke at 2026-11-25 21:18:15 UTC"
    )
    assert board.rows[3].description == (
        "try #1: ran, failed 0.10 s; retry wait 0.05 s; try #2: ran, failed 0.05 s; "
        "try #3: ran, succeeded 0.20 s"
    )


def test_running_steps_stay_open_until_now() -> None:
    attempt = make_attempt(0, None, started_at=at(0.5), ended_at=None)
    run = make_run(status=RunStatus.RUNNING, created_at=T0, attempts=(attempt,))
    steps = [
        make_step(
            1,
            StepType.INLINE,
            StepStatus.RUNNING,
            started_at=at(1),
            attempts=[failed_try(1, 1, 1.5)],
        ),
        make_step(2, StepType.DETACHED, StepStatus.RUNNING, started_at=at(2)),
    ]
    board = step_board(run, steps, now=at(5))
    assert drawn(board) == [
        [("failed", 1000, 1500, 1), ("running", 1500, None, 2)],
        [("running", 2000, None, None)],
    ]
    assert board.open and board.span_ms == 5000  # the axis reaches now
    assert [board.width(row.segments[-1]) for row in board.rows] == [3500, 3000]
    assert [row.duration for row in board.rows] == ["—", "—"]
    assert board.rows[0].description == "try #1: ran, failed 0.50 s; try #2: running (ongoing)"


def test_a_paused_flow_sleeps_until_its_wake_time_past_now() -> None:
    paused = make_attempt(0, AttemptOutcome.PAUSED, started_at=at(0.5), ended_at=at(3))
    run = make_run(
        status=RunStatus.PENDING,
        created_at=T0,
        attempts=(paused,),
        not_before=at(602.9),
        completed_at=None,
    )
    steps = [
        make_step(1, StepType.INLINE, StepStatus.SUCCEEDED, started_at=at(1), completed_at=at(2)),
        make_step(2, StepType.SLEEP, StepStatus.RUNNING, started_at=at(2.9), wake_at=at(602.9)),
    ]
    board = step_board(run, steps, now=at(10))
    assert drawn(board) == [[("ok", 1000, 2000, 1)], [("sleep", 2900, 602_900, None)]]
    assert not board.open and board.span_ms == 602_900  # drawn up to the wake time
    assert board.ticks[-1] == "10 min 2 s"
    assert board.rows[1].sleeping and board.rows[1].status == "sleeping"
    assert board.rows[1].duration == "10 min 0 s"
    assert board.rows[1].description == "sleeping 10 min 0 s; wakes at 2026-11-25 21:28:11 UTC"
    assert paused_until(run) == at(602.9)
    # the run's own row in the waterfall: its attempt ran, then it sleeps until its wake time
    assert [(s.kind, s.start_ms, s.end_ms) for s in segments(run, {}, T0)] == [
        ("queued", 0, 500),
        ("paused", 500, 3000),
        ("sleep", 3000, 602_900),
        ("queued", 602_900, None),
    ]


def test_paused_is_a_pending_run_whose_last_attempt_paused() -> None:
    paused = make_attempt(0, AttemptOutcome.PAUSED, ended_at=at(3))
    failed = make_attempt(0, AttemptOutcome.ERROR, ended_at=at(3))
    pending = make_run(status=RunStatus.PENDING, not_before=at(9), completed_at=None)
    assert paused_until(replace(pending, attempts=(paused,))) == at(9)
    assert paused_until(replace(pending, attempts=(failed,))) is None  # a retry's backoff
    assert paused_until(replace(pending, attempts=())) is None
    woken = make_run(status=RunStatus.RUNNING, attempts=(paused, make_attempt(1, None)))
    assert paused_until(woken) is None
    # between attempts, the waterfall draws the sleep, not a retry wait
    first = replace(paused, enqueued_at=at(1), started_at=at(1))
    resumed = make_attempt(
        1, AttemptOutcome.OK, enqueued_at=at(9), started_at=at(9.5), ended_at=at(10)
    )
    done = make_run(created_at=T0, attempts=(first, resumed))
    assert [(s.kind, s.start_ms, s.end_ms) for s in segments(done, {}, T0)] == [
        ("paused", 1000, 3000),
        ("sleep", 3000, 9000),
        ("queued", 9000, 9500),
        ("ok", 9500, 10_000),
    ]


def test_a_step_cut_short_with_its_attempt_ends_there_and_a_detached_one_goes_on() -> None:
    lost = make_attempt(0, AttemptOutcome.LOST, started_at=at(0.5), ended_at=at(4))
    run = make_run(
        status=RunStatus.PENDING,
        created_at=T0,
        attempts=(lost,),
        not_before=at(5),
        completed_at=None,
    )
    steps = [
        make_step(1, StepType.INLINE, StepStatus.RUNNING, started_at=at(1)),
        make_step(2, StepType.DETACHED, StepStatus.RUNNING, started_at=at(2)),
    ]
    board = step_board(run, steps, now=at(6))
    assert drawn(board) == [[("canceled", 1000, 4000, 1)], [("running", 2000, None, None)]]
    assert board.rows[0].description == "try #1: ran, canceled 3.00 s"


def test_a_run_cancelled_asleep_ends_its_sleep_then() -> None:
    paused = make_attempt(0, AttemptOutcome.PAUSED, started_at=at(0.5), ended_at=at(3))
    run = make_run(
        status=RunStatus.CANCELED, created_at=T0, attempts=(paused,), completed_at=at(20)
    )
    sleep = make_step(1, StepType.SLEEP, StepStatus.RUNNING, started_at=at(2.9), wake_at=at(600))
    child = make_step(2, StepType.DETACHED, StepStatus.RUNNING, started_at=at(2.8))
    board = step_board(run, [sleep, child], now=at(30))
    assert drawn(board) == [[("sleep", 2900, 20_000, None)], [("canceled", 2800, 20_000, None)]]
    assert board.span_ms == 20_000


def test_a_failed_step_run_again_in_a_later_attempt() -> None:
    failed = make_attempt(0, AttemptOutcome.ERROR, started_at=at(0.5), ended_at=at(1.3))
    again = make_attempt(1, AttemptOutcome.OK, started_at=at(5), ended_at=at(6))
    run = make_run(created_at=T0, attempts=(failed, again), completed_at=at(6))
    tried = [failed_try(1, 1, 1.2)]
    fixed = make_step(
        1,
        StepType.INLINE,
        StepStatus.SUCCEEDED,
        started_at=at(1),
        completed_at=at(5.5),
        flow_attempt=1,
        attempts=tried,
    )
    broken = make_step(1, StepType.INLINE, StepStatus.FAILED, started_at=at(1), attempts=tried)
    assert drawn(step_board(run, [fixed], now=at(9))) == [
        [("failed", 1000, 1200, 1), ("backoff", 1200, 5000, None), ("ok", 5000, 5500, 2)]
    ]
    assert drawn(step_board(run, [broken], now=at(9))) == [[("failed", 1000, 1200, 1)]]
    child = make_step(2, StepType.DETACHED, StepStatus.FAILED, started_at=at(2), completed_at=at(3))
    assert drawn(step_board(run, [child], now=at(9))) == [[("failed", 2000, 3000, None)]]


def test_no_steps_yet_is_an_empty_axis() -> None:
    run = make_run(status=RunStatus.RUNNING, created_at=T0, attempts=(make_attempt(0, None),))
    board = step_board(run, [], now=at(3))
    assert (board.rows, board.span_ms, board.open, board.kinds) == ([], 1, False, set())
