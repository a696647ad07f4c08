"""Who may use an instance's socket: a process of the instance's session, checked once per
connection (the kernel names a connection's process once, when it connects)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from scheduler import agent
from scheduler.agent import Instance, _from_its_instance
from scheduler.uds_http import Peer, Request

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _instance(session: int | None) -> Instance:
    instance = Instance("att-1", "trn-1", None, None, None, session=session)
    instance.known.set()
    return instance


def _request(peer: Peer) -> Request:
    return Request("POST", "/callback", {}, b"{}", peer=peer)


@pytest.fixture
def other_session() -> Iterator[int]:
    """The pid of a sleeping process in a session of its own (its session id is its pid)."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    yield child.pid
    child.kill()
    child.wait()


async def test_a_process_of_the_instances_session_is_let_in_and_remembered(
    other_session: int,
) -> None:
    instance = _instance(session=other_session)
    peer = Peer(other_session)
    assert await _from_its_instance(instance, _request(peer))
    assert peer.checked_by is instance


async def test_a_process_of_another_session_is_refused_and_not_remembered(
    other_session: int,
) -> None:
    instance = _instance(session=os.getsid(0))
    peer = Peer(other_session)
    assert not await _from_its_instance(instance, _request(peer))
    assert peer.checked_by is None


async def test_a_checked_connection_is_not_read_again(
    other_session: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = _instance(session=other_session)
    peer = Peer(other_session)
    assert await _from_its_instance(instance, _request(peer))
    looked_up: list[int] = []

    def session_of(pid: int) -> int | None:
        looked_up.append(pid)
        return None

    monkeypatch.setattr(agent, "session_of", session_of)
    assert await _from_its_instance(instance, _request(peer))
    assert looked_up == []
    # checked for another instance: this one checks it itself
    assert not await _from_its_instance(_instance(session=other_session), _request(peer))
    assert looked_up == [other_session]
