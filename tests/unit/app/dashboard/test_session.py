"""Signed session cookies and the persisted secret."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app.dashboard.session import Session, SessionCodec, load_or_create_secret


def test_round_trip_and_tampering() -> None:
    codec = SessionCodec("s" * 40, max_age_seconds=60)
    session = Session.fresh("wsp-1")
    cookie = codec.dumps(session)
    assert codec.loads(cookie) == session
    assert codec.loads(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")) is None
    assert SessionCodec("t" * 40, 60).loads(cookie) is None
    assert codec.loads(None) is None and codec.loads("") is None and codec.loads("x.y.z") is None


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("age", "valid"),
    [(0, True), (1, True), (3599.9, True), (3600, True), (3601, False), (86400, False)],
)
def test_a_session_lives_max_age_seconds(age: float, valid: bool) -> None:
    clock = Clock(1_700_000_000.0)
    codec = SessionCodec("s" * 40, max_age_seconds=3600, clock=clock)
    session = Session.fresh("wsp-1")
    cookie = codec.dumps(session)
    clock.now += age
    assert codec.loads(cookie) == (session if valid else None)


def test_a_session_signed_in_the_future_is_refused() -> None:
    clock = Clock(1_700_000_000.0)
    codec = SessionCodec("s" * 40, max_age_seconds=3600, clock=clock)
    cookie = codec.dumps(Session.fresh("wsp-1"))
    clock.now -= 10
    assert codec.loads(cookie) is None


def test_fresh_sessions_get_new_tokens() -> None:
    assert Session.fresh(None).csrf != Session.fresh(None).csrf


def test_secret_is_created_once_private_and_kept(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path / "data")
    assert len(first) >= 40
    assert load_or_create_secret(tmp_path / "data") == first
    mode = stat.S_IMODE(os.stat(tmp_path / "data" / "dashboard-session.key").st_mode)
    assert mode == 0o600
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["dashboard-session.key"]
