"""Numbered changes and the event stream: a page misses nothing drawn after its cursor."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest

from app.dashboard.changes import ChangeLog
from app.dashboard.live import change_stream
from core.domain import RunStatus
from core.events import EventBus, RunChanged
from scheduler.runs.service import RunService
from tests.unit.app.app_fakes import FakeService, make_run

pytestmark = pytest.mark.anyio

WS = "wsp-default"


def changed(run_id: str, root_id: str = "trn-r", status: str = "running") -> RunChanged:
    return RunChanged(run_id, root_id, None, status, False)


def test_after_gives_exactly_what_followed_the_cursor() -> None:
    bus = EventBus()
    log = ChangeLog(bus, kept=3)
    start = log.cursor
    bus.publish(changed("trn-1"))
    middle = log.cursor
    bus.publish(changed("trn-2"))
    assert [c.run_id for _, c in log.after(start) or []] == ["trn-1", "trn-2"]
    assert [c.run_id for _, c in log.after(middle) or []] == ["trn-2"]
    assert log.after(log.cursor) == []
    for n in range(3, 6):
        bus.publish(changed(f"trn-{n}"))
    assert log.after(start) is None, "older than what is kept: the page must refresh"
    assert log.after("another-process.1") is None
    assert log.after(f"{log.epoch}.99") is None
    assert log.after("garbage") is None


async def events(stream: Any, count: int) -> list[tuple[str, str, dict[str, Any]]]:
    """The next `count` events as (id, event, data); comments and `retry:` are skipped."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    async with asyncio.timeout(5):
        async for chunk in stream:
            fields = dict(
                line.split(": ", 1) for line in chunk.strip().splitlines() if ": " in line
            )
            if "event" in fields:
                found.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
                if len(found) == count:
                    return found
    return found


async def test_the_stream_replays_what_the_page_missed_then_follows() -> None:
    bus = EventBus()
    log = ChangeLog(bus)
    service = FakeService()
    for run_id in ("trn-1", "trn-2", "trn-3"):
        service.runs[run_id] = make_run(run_id, RunStatus.RUNNING, root_id="trn-r")
    service.runs["trn-x"] = make_run("trn-x", RunStatus.RUNNING, root_id="trn-other")
    drawn_at = log.cursor
    bus.publish(changed("trn-1"))
    bus.publish(changed("trn-1"))  # twice: once is enough for the page
    bus.publish(changed("trn-x", root_id="trn-other"))  # another tree
    stream = change_stream(log, cast(RunService, service), WS, "trn-r", drawn_at, 60)
    first = await events(stream, 1)
    assert [(event, data["id"]) for _, event, data in first] == [("run", "trn-1")]
    assert first[0][0] == f"{log.epoch}.2", "the id is the newest change it carries"
    bus.publish(changed("trn-2"))
    bus.publish(changed("trn-gone"))  # not of this workspace (or deleted): nothing to send
    bus.publish(changed("trn-3"))
    more = await events(stream, 2)
    assert [data["id"] for _, _, data in more] == ["trn-2", "trn-3"]
    payload = more[0][2]
    assert payload["status"] == "running" and payload["attempts"] == 0
    assert payload["createdAt"] == int(make_run().created_at.timestamp() * 1000)
    await stream.aclose()


async def test_a_cursor_the_log_cannot_serve_gets_a_stale_event() -> None:
    log = ChangeLog(EventBus())
    stream = change_stream(log, cast(RunService, FakeService()), WS, None, "old.3", 60)
    found = await events(stream, 1)
    assert found == [(log.cursor, "stale", {})]
    await stream.aclose()


async def test_a_reader_far_behind_is_told_to_refresh_and_goes_on() -> None:
    bus = EventBus()
    log = ChangeLog(bus, kept=3)
    service = FakeService()
    service.runs["trn-9"] = make_run("trn-9", RunStatus.RUNNING, root_id="trn-r")
    stream = change_stream(log, cast(RunService, service), WS, None, log.cursor, 60)
    assert await anext(stream) == "retry: 2000\n\n"
    next_event = asyncio.ensure_future(anext(stream))  # following, but reading nothing yet
    await asyncio.sleep(0)
    for n in range(5):  # more than a follower may hold
        bus.publish(changed(f"trn-{n}"))
    bus.publish(changed("trn-9"))
    first = await next_event
    assert "event: stale" in first and f"id: {log.epoch}.4" in first  # where it overflowed
    [(cursor, event, data)] = await events(stream, 1)
    assert (cursor, event, data["id"]) == (f"{log.epoch}.6", "run", "trn-9")
    await stream.aclose()
