"""Requests on the event loop reuse kept-alive connections; requests on the thread do not."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from conveyor._uds import SocketClient
from tests.unit.sdk.sdk_fakes import FakePlatform

pytestmark = pytest.mark.anyio

Clients = Callable[..., SocketClient]


@pytest.fixture
async def clients(platform: FakePlatform) -> AsyncIterator[Clients]:
    """Socket clients of the fake platform, their kept connections closed at the end."""
    made: list[SocketClient] = []

    def make(**options: object) -> SocketClient:
        made.append(SocketClient(platform.socket_path, **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for client in made:
        await client.close_connections()


async def test_requests_one_after_another_share_one_connection(
    platform: FakePlatform, clients: Clients
) -> None:
    platform.input = {"task_name": "t", "input": "W10="}
    client = clients()
    for _ in range(3):
        assert await client.request("GET", "/input") == platform.input
    assert [r.connection for r in platform.requests] == [1, 1, 1]
    assert all("connection" not in r.headers for r in platform.requests)


async def test_requests_at_once_get_a_connection_each_then_reuse_them(
    platform: FakePlatform, clients: Clients
) -> None:
    client = clients()
    await asyncio.gather(*(client.request("GET", "/input") for _ in range(3)))
    assert sorted(r.connection for r in platform.requests) == [1, 2, 3]
    await client.request("GET", "/input")
    assert platform.requests[-1].connection in (1, 2, 3)
    assert platform.connections == 3


async def test_a_connection_the_platform_dropped_is_replaced_without_a_retry(
    platform: FakePlatform, clients: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    platform.close_after_each = True
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    client = clients(sleep=sleep)
    with caplog.at_level(logging.WARNING, logger="conveyor.worker"):
        for _ in range(3):
            await client.request("GET", "/input")
    assert [r.connection for r in platform.requests] == [1, 2, 3]
    assert slept == [] and caplog.records == [], "no try was spent on a stale connection"


async def test_an_idle_connection_is_not_reused_past_its_idle_time(
    platform: FakePlatform, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr("conveyor._uds_async.monotonic", lambda: now[0])
    client = clients()
    await client.request("GET", "/input")
    now[0] += 19.9
    await client.request("GET", "/input")
    now[0] += 20.0
    await client.request("GET", "/input")
    assert [r.connection for r in platform.requests] == [1, 1, 2]


# the connection dropped is the parent's: after a real fork it lives on in the parent, here it is
# collected unclosed
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_forked_process_opens_its_own_connections(
    platform: FakePlatform, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = clients()
    await client.request("GET", "/input")
    # what a child forked from this process would see: another pid, the parent's idle list
    monkeypatch.setattr("conveyor._uds_async.getpid", lambda: 1)
    await client.request("GET", "/input")
    assert [r.connection for r in platform.requests] == [1, 2]


async def test_at_most_eight_idle_connections_are_kept(
    platform: FakePlatform, clients: Clients
) -> None:
    client = clients()
    await asyncio.gather(*(client.request("GET", "/input") for _ in range(10)))
    await asyncio.gather(*(client.request("GET", "/input") for _ in range(10)))
    # the second ten: eight kept from the first, two new
    assert platform.connections == 12


async def test_requests_on_the_thread_share_one_connection(
    platform: FakePlatform, clients: Clients
) -> None:
    client = clients()
    for _ in range(3):
        await asyncio.to_thread(client.request_sync, "GET", "/input")
    assert [r.connection for r in platform.requests] == [1, 1, 1]
    assert all("connection" not in r.headers for r in platform.requests)


async def test_on_the_thread_a_dropped_connection_is_replaced_without_a_retry(
    platform: FakePlatform, clients: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    platform.close_after_each = True
    client = clients()
    with caplog.at_level(logging.WARNING, logger="conveyor.worker"):
        for _ in range(3):
            await asyncio.to_thread(client.request_sync, "GET", "/input")
    assert [r.connection for r in platform.requests] == [1, 2, 3]
    assert caplog.records == [], "no try was spent on a stale connection"


async def test_on_the_thread_an_idle_or_inherited_connection_is_not_reused(
    platform: FakePlatform, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr("conveyor._uds_thread.monotonic", lambda: now[0])
    client = clients()
    await asyncio.to_thread(client.request_sync, "GET", "/input")
    now[0] += 19.9
    await asyncio.to_thread(client.request_sync, "GET", "/input")
    now[0] += 20.0
    await asyncio.to_thread(client.request_sync, "GET", "/input")
    monkeypatch.setattr("conveyor._uds_thread.getpid", lambda: 1)
    await asyncio.to_thread(client.request_sync, "GET", "/input")
    assert [r.connection for r in platform.requests] == [1, 1, 2, 3]
