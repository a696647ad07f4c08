"""Admission arithmetic, plans and metering, with every number written out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from core.settings import DEFAULT_PLANS, LimitSettings, Plan, Settings
from scheduler.runs.admission_rules import Slots, choose, scheduler_share, task_room
from scheduler.runs.metering import meter


def pending(*task_ids: str) -> list[Any]:
    return [SimpleNamespace(id=f"trn-{n}", task_id=task) for n, task in enumerate(task_ids)]


def ids(rows: list[Any]) -> list[str]:
    return [row.id for row in rows]


@pytest.mark.parametrize(
    ("limit", "active", "free"), [(20, 0, 20), (20, 19, 1), (20, 20, 0), (2, 3, -1), (0, 0, 0)]
)
def test_free_slots_are_the_limit_less_the_active(limit: int, active: int, free: int) -> None:
    assert Slots(limit=limit, active=active, waiting=7).free == free


@pytest.mark.parametrize(
    ("free", "chosen"),
    [
        (0, []),
        (1, ["trn-0"]),
        (2, ["trn-0", "trn-1"]),
        (3, ["trn-0", "trn-1", "trn-2"]),
        (4, ["trn-0", "trn-1", "trn-2"]),
    ],
)
def test_choose_takes_as_many_as_are_free_in_order(free: int, chosen: list[str]) -> None:
    assert ids(choose(pending("a", "b", "c"), {}, free)) == chosen


def test_choose_with_no_free_slot_takes_nothing_even_when_a_task_has_room() -> None:
    assert choose(pending("a"), {"a": 5}, 0) == []


def test_a_task_at_its_own_limit_is_skipped_and_later_runs_fill_the_slots() -> None:
    rows = pending("a", "a", "a", "b", "c", "a")
    assert ids(choose(rows, {"a": 1}, 3)) == ["trn-0", "trn-3", "trn-4"]
    assert ids(choose(rows, {"a": 2}, 10)) == ["trn-0", "trn-1", "trn-3", "trn-4"]
    assert ids(choose(rows, {"a": 0}, 10)) == ["trn-3", "trn-4"]
    assert ids(choose(rows, {"a": -2}, 10)) == ["trn-3", "trn-4"]
    assert ids(choose(rows, {"a": 1, "b": 0, "c": 1}, 10)) == ["trn-0", "trn-4"]


def test_choose_leaves_the_callers_room_as_it_was() -> None:
    room = {"a": 1}
    choose(pending("a", "a"), room, 5)
    assert room == {"a": 1}


@pytest.mark.parametrize(
    ("free", "limit", "schedulers", "held", "share"),
    [
        (5, 10, 1, 0, 5),  # alone: everything free
        (5, 10, 0, 3, 5),
        (5, 10, 1, 8, 5),
        (10, 10, 2, 0, 5),  # two: half the limit each
        (10, 10, 2, 3, 2),
        (10, 10, 2, 5, 0),
        (10, 10, 2, 7, -2),  # holds more than its part: starts nothing
        (1, 10, 2, 0, 1),  # never more than is free
        (10, 10, 3, 0, 4),  # a part is rounded up: 4 + 4 + 4 can fill 10
        (10, 10, 4, 1, 2),
        (7, 7, 7, 0, 1),
        (7, 1, 2, 0, 1),
    ],
)
def test_scheduler_share(free: int, limit: int, schedulers: int, held: int, share: int) -> None:
    assert scheduler_share(free, limit, schedulers, held) == share


def test_task_room_is_the_limit_less_the_active_attempts() -> None:
    assert task_room({"a": 3, "b": 1, "c": 2}, {"a": 1, "b": 1, "z": 9}) == {"a": 2, "b": 0, "c": 2}
    assert task_room({"a": 1}, {"a": 4}) == {"a": -3}
    assert task_room({}, {"a": 1}) == {}


def test_the_default_plans() -> None:
    assert [(p.name, p.cpu, p.memory_mb, p.usd_per_hour) for p in DEFAULT_PLANS] == [
        ("starter", 0.5, 512, 0.05),
        ("standard", 1, 2048, 0.20),
        ("pro", 2, 4096, 0.40),
        ("pro_plus", 4, 8192, 0.80),
        ("pro_max", 8, 16384, 1.20),  # Render's: 8 CPU / 16 GB
        ("pro_ultra", 16, 32768, 2.40),  # 16 CPU / 32 GB
    ]
    assert Settings().plan_names == (
        "starter",
        "standard",
        "pro",
        "pro_plus",
        "pro_max",
        "pro_ultra",
    )


def test_plan_lookup() -> None:
    settings = Settings()
    assert settings.plan(None).name == "standard"
    assert settings.plan("").name == "standard"
    assert settings.plan("pro_max").memory_mb == 16384
    with pytest.raises(KeyError) as caught:
        settings.plan("enterprise")
    assert caught.value.args == ("enterprise",)
    custom = Settings(default_plan="pro")
    assert custom.plan(None).name == "pro"


@pytest.mark.parametrize(
    ("usd_per_hour", "per_second"), [(0.05, 0.05 / 3600), (3.6, 0.001), (0.0, 0.0), (7.2, 0.002)]
)
def test_usd_per_second(usd_per_hour: float, per_second: float) -> None:
    plan = Plan(name="p", cpu=1, memory_mb=1, usd_per_hour=usd_per_hour)
    assert plan.usd_per_second == pytest.approx(per_second)


STARTED = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
HOURLY_36 = Plan(name="p", cpu=1, memory_mb=1, usd_per_hour=3.6)  # 0.001 USD a second


@pytest.mark.parametrize(
    ("started_at", "ended_at", "seconds", "cost"),
    [
        (STARTED, STARTED + timedelta(seconds=90), 90.0, 0.09),
        (STARTED, STARTED + timedelta(milliseconds=1500), 1.5, 0.0015),
        (STARTED, STARTED + timedelta(hours=1), 3600.0, 3.6),
        (STARTED, STARTED, 0.0, 0.0),
        (STARTED, STARTED - timedelta(seconds=5), 0.0, 0.0),  # the clock stepped back
        (None, STARTED, 0.0, 0.0),  # never started
    ],
)
def test_meter(
    started_at: datetime | None, ended_at: datetime, seconds: float, cost: float
) -> None:
    metered = meter(started_at, ended_at, HOURLY_36)
    assert metered.compute_seconds == pytest.approx(seconds)
    assert metered.cost_usd == pytest.approx(cost)


def test_meter_at_a_default_plans_rate() -> None:
    standard = Settings().plan("standard")
    metered = meter(STARTED, STARTED + timedelta(minutes=30), standard)
    assert metered.compute_seconds == 1800.0
    assert metered.cost_usd == pytest.approx(0.1)


def test_limit_defaults() -> None:
    limits = LimitSettings()
    assert (limits.max_concurrency, limits.max_children_per_run, limits.max_tree_depth) == (
        20,
        10_000,
        100,
    )
    assert (limits.min_timeout_seconds, limits.default_timeout_seconds) == (30, 7200)
    assert limits.max_timeout_seconds == 86400
