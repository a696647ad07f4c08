"""The process that waits for an attempt's process ends as that one ended: its code or its
signal (the platform reads the attempt's end from the waiting one)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from conveyor._sandbox import wait_and_end_as


def _waiter_status(end: Callable[[], None]) -> int:
    """The wait status of a process that waits for a child ending by `end`."""
    waiter = os.fork()
    if waiter == 0:
        try:
            child = os.fork()
            if child == 0:
                signal.signal(signal.SIGINT, signal.SIG_DFL)  # as in an attempt, not pytest
                end()
                os._exit(0)
            wait_and_end_as(child)
        finally:
            os._exit(99)  # wait_and_end_as returned or raised
    _, status = os.waitpid(waiter, 0)
    return status


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_the_waiter_ends_by_the_signal_that_ended_the_attempt(signum: signal.Signals) -> None:
    status = _waiter_status(lambda: os.kill(os.getpid(), signum))
    assert os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == signum


def test_the_waiter_ends_with_the_attempts_exit_code() -> None:
    status = _waiter_status(lambda: os._exit(3))
    assert os.WIFEXITED(status)
    assert os.WEXITSTATUS(status) == 3
