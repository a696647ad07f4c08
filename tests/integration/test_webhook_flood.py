"""3,000 unsigned webhook requests over real HTTP, and meanwhile a signed delivery is accepted."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from core.security_settings import RateLimitSettings
from tests.integration.build_fixtures import build_settings, send_webhook, serve_builds

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

FLOOD = 3000
SENDERS = 8


def test_a_flood_of_unsigned_requests_does_not_starve_a_signed_delivery(tmp_path: Path) -> None:
    settings = build_settings(tmp_path / "data", "http://127.0.0.1:9", "unused")
    # a burst of 100, then 2 a second: the flood empties its bucket within its first requests
    limits = RateLimitSettings(webhook_per_second=2.0, webhook_burst=100)
    settings = settings.model_copy(update={"rate_limits": limits})
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    halfway = threading.Event()

    def flood(url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(FLOOD // SENDERS):
                answer = send_webhook(client, "push", {"ref": "refs/heads/main"}, secret=None)
                with lock:
                    statuses[answer.status_code] += 1
                    if sum(statuses.values()) >= FLOOD // 2:
                        halfway.set()

    with serve_builds(settings, installations=()) as server:
        senders = [threading.Thread(target=flood, args=(server.url,)) for _ in range(SENDERS)]
        for sender in senders:
            sender.start()
        try:
            assert halfway.wait(400), "the flood did not get halfway"
            with lock:
                assert statuses[429] > 0  # the unsigned bucket is empty by now
            with server.client() as client:
                ping = {"zen": "Design for failure.", "hook_id": 123456}
                signed = send_webhook(client, "ping", ping)
            with lock:
                assert sum(statuses.values()) < FLOOD  # the flood was still going on
        finally:
            for sender in senders:
                sender.join(timeout=400)
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "pong"
    assert sum(statuses.values()) == FLOOD
    assert set(statuses) == {401, 429}
    assert statuses[401] < 100 + 2 * 400  # the burst, then at most 2 a second
