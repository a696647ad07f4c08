"""Docker executor options that need no daemon."""

from __future__ import annotations

import pytest

from scheduler.executors.docker import parse_mount


def test_mounts_are_parsed_or_refused() -> None:
    assert parse_mount("/a:/b") == ("/a", "/b")
    assert parse_mount("/a:/b:ro") == ("/a", "/b", "ro")
    for bad in ("/only", "/a::ro", "/a:/b:ro:x"):
        with pytest.raises(ValueError, match="SRC:DST"):
            parse_mount(bad)
