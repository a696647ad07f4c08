"""Which of an attempt's processes is its instance: the one leading its own session."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from scheduler.executors.local import _leader_of


@pytest.fixture
def processes() -> Iterator[tuple[int, int]]:
    """A session leader and a process of this test's session, both real."""
    leader = subprocess.Popen(["sleep", "60"], start_new_session=True)
    follower = subprocess.Popen(["sleep", "60"])
    try:
        yield leader.pid, follower.pid
    finally:
        for process in (leader, follower):
            process.kill()
            process.wait()


def test_the_session_leader_is_the_instance(processes: tuple[int, int]) -> None:
    leader, follower = processes
    assert _leader_of([follower, leader]) == leader
    assert _leader_of({leader, follower}) == leader


def test_processes_of_another_s_session_have_no_leader(processes: tuple[int, int]) -> None:
    _, follower = processes
    assert _leader_of([follower]) is None
    assert _leader_of([]) is None


def test_a_process_that_is_gone_is_no_leader(processes: tuple[int, int]) -> None:
    leader, _ = processes
    ended = subprocess.Popen(["true"], start_new_session=True)
    ended.wait()
    assert _leader_of([ended.pid, leader]) == leader
