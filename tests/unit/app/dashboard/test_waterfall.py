"""The waterfall: how each run's time splits into segments on the tree's axis."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from app.dashboard.waterfall import Segment, rows_of, segments, waterfall
from core.domain import AttemptInfo, AttemptOutcome, AttemptState, RunInfo, RunStatus
from scheduler.runs.timeline import TreeHistory
from tests.unit.app.app_fakes import T0, make_attempt, make_run


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def kinds(found: list[Segment]) -> list[tuple[str, int, int | None]]:
    return [(s.kind, s.start_ms, s.end_ms) for s in found]


def test_a_retried_run_shows_queue_run_backoff_and_the_second_attempt() -> None:
    run = make_run(
        attempts=(
            make_attempt(
                0, AttemptOutcome.ERROR, enqueued_at=at(0), started_at=at(1), ended_at=at(3)
            ),
            make_attempt(
                1, AttemptOutcome.OK, enqueued_at=at(5), started_at=at(5.5), ended_at=at(6)
            ),
        ),
        created_at=at(0),
    )
    assert kinds(segments(run, {}, T0)) == [
        ("queued", 0, 1000),
        ("failed", 1000, 3000),
        ("backoff", 3000, 5000),
        ("queued", 5000, 5500),
        ("ok", 5500, 6000),
    ]


def test_waiting_on_children_splits_the_running_attempt() -> None:
    attempt = make_attempt(0, None, enqueued_at=at(0), started_at=at(0), ended_at=None)
    run = make_run(status=RunStatus.RUNNING, attempts=(attempt,), completed_at=None)
    waits = {0: [("waiting", at(1)), ("resumed", at(4)), ("waiting", at(5))]}
    assert kinds(segments(run, waits, T0)) == [
        ("running", 0, 1000),
        ("waiting", 1000, 4000),
        ("running", 4000, 5000),
        ("waiting", 5000, None),  # still waiting: open, it grows with the clock
    ]


def test_a_pending_run_is_queued_until_now_and_one_in_backoff_waits_until_not_before() -> None:
    fresh = make_run(status=RunStatus.PENDING, created_at=at(2))
    assert kinds(segments(fresh, {}, T0)) == [("queued", 2000, None)]
    failed_once = make_attempt(0, AttemptOutcome.ERROR, started_at=at(0), ended_at=at(1))
    retrying = make_run(
        status=RunStatus.PENDING, attempts=(failed_once,), not_before=at(9), completed_at=None
    )
    assert kinds(segments(retrying, {}, T0))[-2:] == [
        ("backoff", 1000, 9000),
        ("queued", 9000, None),
    ]


def test_a_run_cancelled_in_the_queue_ends_at_its_cancellation() -> None:
    run = make_run(status=RunStatus.CANCELED, attempts=(), created_at=at(0), completed_at=at(7))
    assert kinds(segments(run, {}, T0)) == [("queued", 0, 7000)]
    killed = make_attempt(0, AttemptOutcome.CANCELED, started_at=at(1), ended_at=at(2))
    stopped = make_run(status=RunStatus.CANCELED, attempts=(killed,), completed_at=at(2))
    assert kinds(segments(stopped, {}, T0)) == [("queued", 0, 1000), ("canceled", 1000, 2000)]


def tree_of_three() -> TreeHistory:
    root = make_run("trn-1", RunStatus.RUNNING, created_at=at(0), completed_at=None)
    root = _with(root, make_attempt(0, None, started_at=at(0), ended_at=None))
    child = make_run("trn-2", parent_id="trn-1", root_id="trn-1", created_at=at(1))
    child = _with(child, make_attempt(0, enqueued_at=at(1), started_at=at(1), ended_at=at(2)))
    grandchild = make_run("trn-3", parent_id="trn-2", root_id="trn-1", created_at=at(1.5))
    grandchild = _with(
        grandchild, make_attempt(0, enqueued_at=at(1.5), started_at=at(1.5), ended_at=at(1.6))
    )
    return TreeHistory("trn-1", [root, child, grandchild], 5)


def _with(run: RunInfo, *attempts: AttemptInfo) -> RunInfo:
    return replace(run, attempts=attempts)


def test_rows_come_in_tree_order_on_one_axis_that_reaches_now() -> None:
    board = waterfall(tree_of_three(), now=at(10))
    assert board is not None
    assert [(row.run.id, row.depth) for row in board.rows] == [
        ("trn-1", 0),
        ("trn-2", 1),
        ("trn-3", 2),
    ]
    assert board.now_ms == 10_000 and board.span_ms == 10_000  # the root still runs
    assert board.cut and board.total == 5
    assert board.open and board.ended_at is None
    assert board.ticks[0] == "0.00 s" and board.ticks[-1] == "10 s"
    # a 100 ms bar on a 10 s axis is drawn, but never thinner than 0.2 % of it
    tiny = board.rows[2].segments[-1]
    assert board.width(tiny) == 100
    assert board.width(Segment("ok", 0, 1, 0)) == 20
    assert [row.run.id for row in rows_of(board, ["trn-3"])] == ["trn-2", "trn-3"]


def test_a_finished_tree_ends_with_its_last_run_and_sums_cost() -> None:
    history = tree_of_three()
    history.runs[0] = _with(
        make_run("trn-1", created_at=at(0)), make_attempt(0, started_at=at(0), ended_at=at(4))
    )
    board = waterfall(history, now=at(60))
    assert board is not None and not board.open
    assert board.span_ms == 4000 and board.ended_at == at(4)
    assert board.cost_usd == pytest.approx(3 * 0.0001)
    assert board.counts == [("succeeded", 3)]
    described = board.rows[1].description
    assert described == "attempt #0: ran, succeeded 1.00 s"


def test_no_root_no_waterfall() -> None:
    orphan = make_run("trn-2", parent_id="trn-1", root_id="trn-1")
    assert waterfall(TreeHistory("trn-1", [orphan], 1)) is None


def test_an_attempt_that_never_started_is_only_queued() -> None:
    waiting = make_attempt(0, None, state=AttemptState.STARTING, started_at=None, ended_at=None)
    run = make_run(status=RunStatus.PENDING, attempts=(waiting,), completed_at=None)
    assert [s.kind for s in segments(run, {}, T0)] == ["queued"]
