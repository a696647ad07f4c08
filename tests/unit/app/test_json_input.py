"""Untrusted JSON: depth from the raw text, lone surrogates, NUL; answers that always encode."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.api.json_input import (
    MAX_DEPTH,
    check_text,
    lone_surrogate_path,
    nesting_depth,
    parse_json,
)
from app.api.responses import dumps
from app.dashboard.present import pretty_json
from app.dashboard.run_input import from_fields, from_raw
from core.domain import TaskParameter
from core.errors import InvalidRequest


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b'"x"', 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'["[[[[", "]]", "\\"[[["]', 1),
        (b'{"a\\\\": ["\\\\"]}', 2),
        (b"[" * 200_000 + b"]" * 200_000, 200_000),
        (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, 5_000),
    ],
)
def test_nesting_depth(raw: bytes, depth: int) -> None:
    assert nesting_depth(raw) == depth


def test_depth_limit_is_checked_before_parsing() -> None:
    assert parse_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    for raw in [b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), b"[" * 200_000]:
        with pytest.raises(InvalidRequest, match="deeper than 512"):
            parse_json(raw)


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"task": "\\ud800"}', "'task'"),
        (b'{"input": [1, "\\uDFFF"]}', "'input'[1]"),
        (b'{"input": {"k\\udc00": 1}}', "'input'.'k\\udc00'"),
        (b'"\\ud800"', "the top"),
    ],
)
def test_lone_surrogates_are_refused_with_their_place(raw: bytes, where: str) -> None:
    with pytest.raises(InvalidRequest, match="lone UTF-16 surrogate") as refused:
        parse_json(raw)
    assert f"at {where}:" in refused.value.message


def test_valid_text_passes() -> None:
    assert parse_json(b'{"emoji": "\\ud83d\\ude00", "text": "\\\\ud800"}') == {
        "emoji": "😀",
        "text": "\\ud800",
    }
    assert parse_json(b'\xef\xbb\xbf{"bom": true}') == {"bom": True}
    assert parse_json(b"[NaN]") is not None


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [(b'["\xed\xa0\x80"]', "UTF-8"), (b"[1,", "not valid JSON"), (b"1" * 5000, "not valid JSON")],
)
def test_other_bad_bodies(raw: bytes, fragment: str) -> None:
    with pytest.raises(InvalidRequest, match=fragment):
        parse_json(raw)


def test_lone_surrogate_path_walks_keys_and_values() -> None:
    assert lone_surrogate_path({"a": [{"b": "ok"}], "c": "😀"}) is None
    assert lone_surrogate_path([[], [0, ["\ud800"]]]) == "[1][1][0]"


def test_check_text() -> None:
    assert check_text("fine", "name", 4) == "fine"
    with pytest.raises(InvalidRequest, match="NUL"):
        check_text("a\x00", "name")
    with pytest.raises(InvalidRequest, match="longer than 3"):
        check_text("four", "name", 3)


@pytest.mark.parametrize("value", [["\ud800"], {"k\udfff": "v"}, "x\udc00y"])
def test_answers_keep_a_lone_surrogate_as_its_escape(value: Any) -> None:
    text = dumps(value)
    assert text.isascii() and "\\ud" in text
    assert json.loads(text) == value
    pretty, _ = pretty_json(value)
    pretty.encode("utf-8")


def test_answers_stay_utf8_when_they_can() -> None:
    assert dumps({"name": "Grâce 😀"}) == '{"name":"Grâce 😀"}'


def test_dashboard_form_refuses_what_the_api_refuses() -> None:
    value, problems = from_raw("[" * 600 + "]" * 600)
    assert value is None and "deeper than 512" in problems[0].message
    value, problems = from_raw('["\\ud800"]')
    assert value is None and "surrogate" in problems[0].message
    params = (TaskParameter("a", "str", False, None),)
    _, problems = from_fields(params, {"param.a": '"\\udc00"'})
    assert problems[0].field == "param.a" and "surrogate" in problems[0].message
    _, problems = from_fields(params, {"param.a": "[" * 600 + "]" * 600})
    assert "a: nests" in problems[0].message
