"""Signed session cookies and the persisted secret."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from app.dashboard.session import Session, SessionCodec, load_or_create_secret


def test_round_trip_and_tampering() -> None:
    codec = SessionCodec("s" * 40, max_age_seconds=60)
    session = Session.fresh("wsp-1")
    cookie = codec.dumps(session)
    assert codec.loads(cookie) == session
    assert codec.loads(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")) is None
    assert SessionCodec("t" * 40, 60).loads(cookie) is None
    assert codec.loads(None) is None and codec.loads("") is None and codec.loads("x.y.z") is None


def test_expired_sessions_are_refused() -> None:
    codec = SessionCodec("s" * 40, max_age_seconds=1)
    cookie = codec.dumps(Session.fresh("wsp-1"))
    deadline = time.monotonic() + 5
    while codec.loads(cookie) is not None:
        assert time.monotonic() < deadline, "the session never expired"
        time.sleep(0.1)


def test_fresh_sessions_get_new_tokens() -> None:
    assert Session.fresh(None).csrf != Session.fresh(None).csrf


def test_secret_is_created_once_private_and_kept(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path / "data")
    assert len(first) >= 40
    assert load_or_create_secret(tmp_path / "data") == first
    mode = stat.S_IMODE(os.stat(tmp_path / "data" / "dashboard-session.key").st_mode)
    assert mode == 0o600
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["dashboard-session.key"]
