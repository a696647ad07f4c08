# mypy: disallow-untyped-decorators=False
"""The bench's tasks for Celery (prefork pool, Redis as broker and result backend).

Imported by `celery -A bench.peers.celery_app worker` and by the Celery driver, both in the
Celery virtualenv the harness builds under bench/.cache; BENCH_REDIS_URL names the Redis db.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, chord  # type: ignore[import-not-found]

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

app = Celery("bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="bench.total")
def total(values: list[int]) -> int:
    return sum(values)


@app.task(name="bench.fan", bind=True)
def fan(self: Any, n: int) -> Any:
    """W3: the parent's result is the sum of `n` children (a chord the parent becomes)."""
    return self.replace(chord([add.s(i, i) for i in range(n)], total.s()))
