"""Drives Celery through its own client API; runs in the Celery virtualenv.

python -m bench.drivers.celery_driver  (BENCH_REDIS_URL names the Redis db)
"""

from __future__ import annotations

import platform
import time
from importlib.metadata import version
from typing import Any

from celery import chain  # type: ignore[import-not-found]
from celery.exceptions import TimeoutError as ResultTimeout  # type: ignore[import-not-found]
from celery.result import ResultSet  # type: ignore[import-not-found]

from bench.drivers.protocol import Reply, Request, expect, serve
from bench.peers.celery_app import add, app, fan


def handle(request: Request) -> Reply:
    op = request["op"]
    timeout = float(request.get("timeout_s", 60))
    if op == "round_trips":
        return round_trips(int(request["count"]), float(request["budget_s"]), timeout)
    if op == "burst":
        return burst(int(request["count"]), timeout)
    if op == "fanout":
        n = int(request["children"])
        return timed(lambda: fan.delay(n), n * (n - 1), timeout)
    if op == "chain":
        depth = int(request["depth"])
        links = chain(add.s(0, 1), *(add.s(1) for _ in range(depth - 1)))
        return timed(links.apply_async, depth, timeout)
    raise ValueError(f"unknown op {op!r}")


def round_trips(count: int, budget_s: float, timeout_s: float) -> Reply:
    latencies: list[float] = []
    started = time.perf_counter()
    for i in range(count):
        if latencies and time.perf_counter() - started > budget_s:
            break
        before = time.perf_counter()
        try:
            value = add.delay(i, 1).get(timeout=timeout_s)
        except ResultTimeout:
            return {"latencies_ms": latencies, "timed_out": True}
        latencies.append((time.perf_counter() - before) * 1000)
        expect(value == i + 1, f"add({i}, 1) gave {value!r}")
    return {"latencies_ms": latencies, "timed_out": False}


def burst(count: int, timeout_s: float) -> Reply:
    started = time.perf_counter()
    results = [add.delay(i, i) for i in range(count)]
    try:
        values = ResultSet(results).get(timeout=timeout_s)
    except ResultTimeout:
        done = sum(1 for r in results if r.ready())
        return {"seconds": timeout_s, "completed": done, "timed_out": True}
    seconds = time.perf_counter() - started
    expect(values == [2 * i for i in range(count)], "wrong sums in the burst")
    return {"seconds": seconds, "completed": count, "timed_out": False}


def timed(send: Any, expected: int, timeout_s: float) -> Reply:
    started = time.perf_counter()
    try:
        value = send().get(timeout=timeout_s)
    except ResultTimeout:
        return {"seconds": timeout_s, "timed_out": True}
    seconds = time.perf_counter() - started
    expect(value == expected, f"got {value!r}, not {expected}")
    return {"seconds": seconds, "timed_out": False}


def main() -> None:
    app.connection_for_write().ensure_connection(max_retries=3)
    ready = {name: version(name) for name in ("celery", "kombu", "billiard")}
    ready["redis-py (Celery's virtualenv)"] = version("redis")
    ready["Python (Celery's virtualenv)"] = platform.python_version()
    serve(handle, ready)


if __name__ == "__main__":
    main()
