"""Workflow slugs from names and folder names (conveyor dev, workflow resources)."""

from __future__ import annotations

import pytest

from scheduler.registration import slugify


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("hello", "hello"),
        ("My ETL", "my-etl"),
        ("render_sdk.v2", "render-sdk-v2"),
        ("--x--", "x"),
        ("...", "workflow"),
        ("a" * 99 + "-b", "a" * 99),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug
