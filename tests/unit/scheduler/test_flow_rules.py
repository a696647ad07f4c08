"""The rules a flow's replay is checked by: the input hash, and what a mismatch says."""

from __future__ import annotations

from scheduler.flows.protocol import input_hash
from scheduler.flows.steps import mismatch, over_limit


def test_the_input_hash_is_of_canonical_json() -> None:
    # sha256 of '{"a":1,"b":[2,"é"]}' (keys sorted, no spaces, UTF-8)
    expected = "992f8d0a5d6192a6c1c9dd35a695b4ce8c743eaa26836ab176d7367cf0bd62b1"
    assert input_hash({"b": [2, "é"], "a": 1}) == expected
    assert input_hash([1]) != input_hash([1.5]) != input_hash(["1"])
    assert input_hash(["\udc80"]) != input_hash(["\udc81"])  # lone surrogates hash too


def test_a_mismatch_names_its_seq_kind_and_both_sides() -> None:
    refusal = mismatch(3, "type", "inline:price", "sleep:sleep")
    assert refusal.details == {
        "code": "flow_determinism_error",
        "message": "flow_determinism_error: step 3 was recorded as inline:price, "
        "this attempt reached sleep:sleep",
        "kind": "type",
        "seq": 3,
        "expected": "inline:price",
        "actual": "sleep:sleep",
    }
    assert refusal.message == (
        "flow_determinism_error: step 3 was recorded as inline:price, "
        "this attempt reached sleep:sleep"
    )


def test_a_limit_names_its_code_limit_value_and_setting() -> None:
    refusal = over_limit("flow_step_limit_exceeded", 4, 3, 4, "the step count", "SETTING_X")
    assert refusal.details == {
        "code": "flow_step_limit_exceeded",
        "message": "flow_step_limit_exceeded: the step count at step 4 is 4, over the limit of 3 "
        "(SETTING_X)",
        "seq": 4,
        "limit": 3,
        "value": 4,
    }
