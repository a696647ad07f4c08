"""How a workload's count is fitted to its time budget."""

from __future__ import annotations

from typing import cast

import pytest

from bench.systems import System
from bench.targets import Running
from bench.workloads import Session


def _session(budget_s: float) -> Session:
    return Session(cast(Running, None), cast(System, None), round=1, budget_s=budget_s)


@pytest.mark.parametrize(
    ("wanted", "each_s", "least", "budget_s", "fitted"),
    [
        (1000, 0.02, 10, None, 300),  # 20 s is over twice the 6 s budget: 6 s' worth
        (1000, 0.02, 10, 30.0, 1000),  # W3's own 30 s: 20 s is within twice that
        (1000, 0.06, 10, 30.0, 1000),  # 60 s: just within twice the budget
        (1000, 0.1, 10, 30.0, 300),  # 100 s: 30 s' worth
        (200, 0.012, 10, None, 200),  # 2.4 s
        (50, 10.0, 3, None, 3),  # nothing fits: at least `least`
        (2, 10.0, 3, None, 2),  # but never more than wanted
    ],
)
def test_a_count_is_capped_to_what_fits_in_the_budget(
    wanted: int, each_s: float, least: int, budget_s: float | None, fitted: int
) -> None:
    assert _session(6.0).fit(wanted, each_s, least, budget_s) == fitted
