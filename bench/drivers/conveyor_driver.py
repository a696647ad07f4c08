"""Drives a Conveyor server the way a user would: Conveyor's `AsyncClient` and REST v1's SSE.

python -m bench.drivers.conveyor_driver --url http://127.0.0.1:PORT [--api-key KEY]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from datetime import datetime
from importlib.metadata import version
from typing import Any

import httpx

from bench.drivers.protocol import Reply, Request, expect, serve
from conveyor import AsyncClient, WaitTimeout

ADD, FAN, CHAIN = "bench/add", "bench/fan", "bench/chain"
SUBMITTERS = 32  # POSTs in flight at once while submitting a burst
EVENTS_IDS = 100  # the most run ids one SSE stream may watch


class ConveyorDriver:
    def __init__(self, url: str, api_key: str | None) -> None:
        self.client = AsyncClient(url, api_key, timeout=60.0)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(base_url=url, headers=headers, timeout=None)

    async def close(self) -> None:
        await self.client.aclose()
        await self.http.aclose()

    async def handle(self, request: Request) -> Reply:
        op = request["op"]
        timeout = float(request.get("timeout_s", 60))
        if op == "round_trips":
            return await self.round_trips(int(request["count"]), request["budget_s"], timeout)
        if op == "burst":
            return await self.burst(int(request["count"]), timeout)
        if op == "fanout":
            n = int(request["children"])
            return await self.one_run(FAN, n, n * (n - 1), timeout)
        if op == "chain":
            depth = int(request["depth"])
            return await self.one_run(CHAIN, depth, depth, timeout)
        if op == "submit":
            run = await self.client.start(ADD, [1, 2])
            return {"run_id": run.id}
        if op == "await_runs":
            return await self.await_runs(request["run_ids"], request["budget_s"], timeout)
        raise ValueError(f"unknown op {op!r}")

    async def round_trips(self, count: int, budget_s: float, timeout_s: float) -> Reply:
        latencies: list[float] = []
        started = time.perf_counter()
        for i in range(count):
            if latencies and time.perf_counter() - started > budget_s:
                break
            before = time.perf_counter()
            try:
                run = await self.client.run(ADD, [i, 1], timeout=timeout_s)
            except WaitTimeout:
                return {"latencies_ms": latencies, "timed_out": True}
            latencies.append((time.perf_counter() - before) * 1000)
            expect(run.result == i + 1, f"add({i}, 1) gave {run.result!r}")
        return {"latencies_ms": latencies, "timed_out": False}

    async def burst(self, count: int, timeout_s: float) -> Reply:
        """Submits `count` runs at once; the clock stops at the last result."""
        done: dict[str, dict[str, Any]] = {}
        inputs: dict[str, int] = {}
        limiter = asyncio.Semaphore(SUBMITTERS)

        async def submit(i: int) -> str:
            async with limiter:
                run = await self.client.start(ADD, [i, i])
            inputs[run.id] = i
            return run.id

        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s), asyncio.TaskGroup() as group:
                for first in range(0, count, EVENTS_IDS):
                    chunk = range(first, min(count, first + EVENTS_IDS))
                    ids = await asyncio.gather(*(submit(i) for i in chunk))
                    # watch each chunk as soon as it exists: ended runs are sent at once
                    group.create_task(self._watch(ids, done))
        except TimeoutError:
            return {"seconds": timeout_s, "completed": len(done), "timed_out": True}
        seconds = time.perf_counter() - started
        for run_id, details in done.items():
            expect(details["status"] == "succeeded", f"{run_id} {details['status']}")
            expect(details["results"] == [2 * inputs[run_id]], f"{run_id}: {details['results']}")
        return {"seconds": seconds, "completed": len(done), "timed_out": False}

    async def _watch(
        self,
        ids: Sequence[str],
        done: dict[str, dict[str, Any]],
        first: asyncio.Event | None = None,
    ) -> None:
        params = {"taskRunIds": list(ids)}
        async with self.http.stream("GET", "/v1/task-runs/events", params=params) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    details = json.loads(line[5:])
                    done[details["id"]] = details
                    if first is not None:
                        first.set()

    async def one_run(self, task: str, arg: int, expected: int, timeout_s: float) -> Reply:
        started = time.perf_counter()
        try:
            run = await self.client.run(task, [arg], timeout=timeout_s)
        except WaitTimeout:
            return {"seconds": timeout_s, "timed_out": True}
        seconds = time.perf_counter() - started
        expect(run.result == expected, f"{task}({arg}) gave {run.result!r}, not {expected}")
        return {"seconds": seconds, "timed_out": False}

    async def await_runs(self, run_ids: list[str], budget_s: float, timeout_s: float) -> Reply:
        """When each of `run_ids` completed (server clock), for those done within `budget_s`
        of the first completion; waits `timeout_s` at most for that first one."""
        done: dict[str, dict[str, Any]] = {}
        first = asyncio.Event()
        watchers = [
            asyncio.create_task(self._watch(run_ids[i : i + EVENTS_IDS], done, first))
            for i in range(0, len(run_ids), EVENTS_IDS)
        ]
        every = asyncio.gather(*watchers)
        started = asyncio.create_task(first.wait())
        either: set[asyncio.Future[Any]] = {started, every}
        try:
            await asyncio.wait(either, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            if first.is_set() and not every.done():
                await asyncio.wait({every}, timeout=budget_s)
            if every.done():
                every.result()  # a watcher's error
        finally:
            started.cancel()
            every.cancel()
            await asyncio.gather(every, started, return_exceptions=True)
        failed = [i for i, d in done.items() if d["status"] != "succeeded"]
        expect(not failed, f"runs did not succeed: {failed[:5]}")
        ended = sorted(_epoch(d["completedAt"]) for d in done.values())
        return {"completed_at": ended, "timed_out": len(done) < len(run_ids)}


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key")
    args = parser.parse_args()
    with asyncio.Runner() as runner:
        driver = ConveyorDriver(args.url, args.api_key)
        try:
            ready = {"conveyor (package)": version("conveyor"), "httpx": version("httpx")}
            serve(lambda request: runner.run(driver.handle(request)), ready)
        finally:
            runner.run(driver.close())


if __name__ == "__main__":
    main()
