"""The signed `state` of the GitHub App's install link: exact ages, forgeries, other secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.github.setup_state import issue_state, read_state
from core.errors import InvalidRequest

ISSUED = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def test_a_state_names_its_workspace_and_when_it_was_issued() -> None:
    state = issue_state("secret", "wsp-a", ISSUED)
    read = read_state("secret", state, ISSUED + timedelta(seconds=3600), 3600)
    assert read.workspace_id == "wsp-a" and read.issued_at == ISSUED


@pytest.mark.parametrize(
    ("age_seconds", "good"),
    [(0, True), (3600, True), (3601, False), (-60, True), (-61, False)],
)
def test_a_state_is_good_for_its_max_age(age_seconds: int, good: bool) -> None:
    state = issue_state("secret", "wsp-a", ISSUED)
    now = ISSUED + timedelta(seconds=age_seconds)
    if good:
        assert read_state("secret", state, now, 3600).workspace_id == "wsp-a"
    else:
        with pytest.raises(InvalidRequest, match="state expired"):
            read_state("secret", state, now, 3600)


def test_a_state_of_another_secret_or_changed_is_refused() -> None:
    state = issue_state("secret", "wsp-a", ISSUED)
    body, _, mac = state.partition(".")
    forged_body = issue_state("secret", "wsp-b", ISSUED).partition(".")[0]
    for bad in (
        issue_state("other-secret", "wsp-a", ISSUED),
        f"{forged_body}.{mac}",  # another workspace under this signature
        f"{body}.{mac[:-2]}",
        body,
        "",
        "not base64 at all.!!",
    ):
        with pytest.raises(InvalidRequest, match="state is not one this server issued"):
            read_state("secret", bad, ISSUED, 3600)
