"""Durations, times and shortened JSON as the pages show them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from app.dashboard import present
from app.dashboard.chart import bar_chart
from app.dashboard.run_input import from_fields, from_raw
from core.domain import TaskParameter

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_durations() -> None:
    assert present.duration(None, None) == "—"
    assert present.duration(T0, T0 + timedelta(seconds=1.25)) == "1.25 s"
    assert present.duration(T0, T0 + timedelta(seconds=42)) == "42 s"
    assert present.duration(T0, T0 + timedelta(seconds=184)) == "3 min 4 s"
    assert present.duration(T0, T0 + timedelta(hours=2, minutes=5)) == "2 h 5 min"
    assert present.duration(T0, None, now=T0 + timedelta(seconds=3)) == "3.00 s"
    naive = T0.replace(tzinfo=None)
    assert present.when(naive) == "2026-01-02 03:04:05 UTC"


def test_small_values_are_shown_whole() -> None:
    text, cut = present.pretty_json({"a": [1, 2, {"b": "c"}]})
    assert not cut
    assert json.loads(text) == {"a": [1, 2, {"b": "c"}]}


def test_large_values_are_shortened_and_say_so() -> None:
    value = {"long": "x" * 5000, "many": list(range(500)), "deep": [[[[[[[[[[1]]]]]]]]]]}
    text, cut = present.pretty_json(value)
    assert cut
    shown = json.loads(text)
    assert shown["long"].endswith(f"(+{5000 - present.MAX_STRING} characters)")
    assert len(shown["many"]) == present.MAX_ITEMS + 1
    assert shown["many"][-1] == f"… (+{500 - present.MAX_ITEMS} more items)"
    assert "not shown" in text


def test_a_huge_document_is_cut_to_the_page_limit() -> None:
    text, cut = present.pretty_json([["y" * 300] * 40] * 40)
    assert cut
    assert len(text) < present.MAX_TEXT + 100
    assert text.endswith("download the whole value)")


def test_fields_build_keyword_input() -> None:
    params = (
        TaskParameter("a", "int", False, None),
        TaskParameter("name", "str", True, '"x"'),
        TaskParameter("opts", None, True, "null"),
    )
    values, problems = from_fields(params, {"param.a": " 3 ", "param.name": "bare text"})
    assert problems == []
    assert values == {"a": 3, "name": "bare text"}


def test_fields_report_every_problem() -> None:
    params = (TaskParameter("a", "int", False, None), TaskParameter("b", "list", False, None))
    _, problems = from_fields(params, {"param.b": "[1,"})
    assert [p.field for p in problems] == ["param.a", "param.b"]
    assert "a is required" in problems[0].message
    assert "not valid JSON" in problems[1].message


def test_raw_input() -> None:
    assert from_raw("") == ([], [])
    assert from_raw('{"a": 1}') == ({"a": 1}, [])
    _, problems = from_raw("42")
    assert "array or object" in problems[0].message
    _, problems = from_raw("[1,")
    assert "not valid JSON" in problems[0].message


def test_bar_chart_scales_to_the_largest_value() -> None:
    chart = bar_chart("t", [("01-01", 5.0), ("01-02", 10.0), ("01-03", 0.0)], "s")
    tallest = max(bar.height for bar in chart.bars)
    assert chart.bars[1].height == tallest
    assert chart.bars[0].height == tallest / 2
    assert chart.bars[2].height == 0
    assert all(bar.y + bar.height == chart.baseline_y for bar in chart.bars)
    assert chart.max_text == "10.00 s"
    assert bar_chart("t", [], "s").empty


def test_short_ids_keep_the_random_tail() -> None:
    assert present.short_id("trn-01m97dr9ab0123456789abcdef") == "…89abcdef"
    assert present.short_id("trn-01m97dr9zz0123456789abcdef") == "…89abcdef"
    assert present.short_id("trn-01m97dr9ab0123456789abcdeg") == "…89abcdeg"
    assert present.short_id("12345678") == "12345678"
    assert present.short_id("123456789") == "…23456789"
