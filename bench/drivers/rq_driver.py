"""Drives RQ through its own client API; runs in the RQ virtualenv.

python -m bench.drivers.rq_driver  (BENCH_REDIS_URL names the Redis db)
"""

from __future__ import annotations

import os
import platform
import time
from importlib.metadata import version
from typing import Any

from redis import Redis  # type: ignore[import-not-found]
from rq import Queue, Worker  # type: ignore[import-not-found]
from rq.job import Job  # type: ignore[import-not-found]

from bench.drivers.protocol import Reply, Request, expect, serve
from bench.peers.rq_jobs import QUEUE, add, fan, step

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


class Timeout(Exception):
    pass


class RqDriver:
    def __init__(self) -> None:
        # redis-py 8 times out reads after 5 s by default, which cuts RQ's blocking result
        # waits (XREAD BLOCK) short: waits here are bounded by their own deadlines instead
        self.redis = Redis.from_url(REDIS_URL, socket_timeout=None)
        self.queue = Queue(QUEUE, connection=self.redis)

    def handle(self, request: Request) -> Reply:
        op = request["op"]
        timeout = float(request.get("timeout_s", 60))
        try:
            if op == "workers":
                return {"workers": Worker.count(connection=self.redis)}
            if op == "round_trips":
                return self.round_trips(int(request["count"]), request["budget_s"], timeout)
            if op == "burst":
                return self.burst(int(request["count"]), timeout)
            if op == "fanout":
                return self.fanout(int(request["children"]), timeout)
            if op == "chain":
                return self.chain(int(request["depth"]), timeout)
        except Timeout:
            return {"seconds": timeout, "timed_out": True, "latencies_ms": [], "completed": 0}
        raise ValueError(f"unknown op {op!r}")

    def result(self, job: Any, deadline: float) -> Any:
        left = deadline - time.monotonic()
        # RQ blocks on the job's result stream; its timeout is in whole seconds
        result = job.latest_result(timeout=max(1, int(left + 0.999))) if left > 0 else None
        if result is None:
            raise Timeout()
        expect(result.type == result.Type.SUCCESSFUL, f"job {job.id}: {result.exc_string}")
        return result.return_value

    def round_trips(self, count: int, budget_s: float, timeout_s: float) -> Reply:
        latencies: list[float] = []
        started = time.perf_counter()
        for i in range(count):
            if latencies and time.perf_counter() - started > budget_s:
                break
            before = time.perf_counter()
            value = self.result(self.queue.enqueue(add, i, 1), time.monotonic() + timeout_s)
            latencies.append((time.perf_counter() - before) * 1000)
            expect(value == i + 1, f"add({i}, 1) gave {value!r}")
        return {"latencies_ms": latencies, "timed_out": False}

    def burst(self, count: int, timeout_s: float) -> Reply:
        deadline = time.monotonic() + timeout_s
        started = time.perf_counter()
        jobs = self.queue.enqueue_many([Queue.prepare_data(add, (i, i)) for i in range(count)])
        for i, job in enumerate(jobs):
            try:
                value = self.result(job, deadline)
            except Timeout:
                done = sum(1 for j in jobs if j.get_status(refresh=True) == "finished")
                return {"seconds": timeout_s, "completed": done, "timed_out": True}
            expect(value == 2 * i, f"add({i}, {i}) gave {value!r}")
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "completed": count, "timed_out": False}

    def fanout(self, n: int, timeout_s: float) -> Reply:
        deadline = time.monotonic() + timeout_s
        started = time.perf_counter()
        total_id = self.result(self.queue.enqueue(fan, n), deadline)
        value = self.result(Job.fetch(total_id, connection=self.redis), deadline)
        seconds = time.perf_counter() - started
        expect(value == n * (n - 1), f"fan({n}) gave {value!r}")
        return {"seconds": seconds, "timed_out": False}

    def chain(self, depth: int, timeout_s: float) -> Reply:
        deadline = time.monotonic() + timeout_s
        started = time.perf_counter()
        job = None
        for _ in range(depth):
            job = self.queue.enqueue(step, depends_on=job)
        value = self.result(job, deadline)
        seconds = time.perf_counter() - started
        expect(value == depth, f"chain({depth}) gave {value!r}")
        return {"seconds": seconds, "timed_out": False}


def main() -> None:
    driver = RqDriver()
    driver.redis.ping()
    ready = {
        "rq": version("rq"),
        "redis-py (RQ's virtualenv)": version("redis"),
        "Python (RQ's virtualenv)": platform.python_version(),
    }
    serve(driver.handle, ready)


if __name__ == "__main__":
    main()
