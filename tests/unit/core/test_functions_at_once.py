"""How many functions the PostgreSQL database runs at once, by the pool's size."""

from __future__ import annotations

import pytest

from core.db.database import functions_at_once


@pytest.mark.parametrize(
    ("pool_size", "expected"),
    [(1, 1), (2, 1), (4, 3), (5, 4), (10, 8), (20, 16), (21, 16), (50, 40)],
)
def test_four_in_five_of_the_kept_connections_and_never_none(pool_size: int, expected: int) -> None:
    assert functions_at_once(pool_size) == expected
