"""W1-W4 on one started system, each sized to the time budget from what was measured before.

Today's slow configurations would take hours at the full counts, so each workload's count is
capped to what the system can do in about `--budget` seconds (the table says so); a fast system
gets the full counts. A workload that fails or times out leaves work behind, so the system is
restarted before the next one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench import procstat
from bench.driver_client import DriverError
from bench.measure import Observed, observe, percentile
from bench.options import Sizes
from bench.results import Measurement, failed
from bench.systems import System
from bench.targets import Running

WARM_UP_RUNS = 3


@dataclass
class Session:
    """A started system and what is known so far of its speed."""

    running: Running
    system: System
    round: int
    budget_s: float
    latency_s: float = 1.0  # one trigger-to-result round trip
    rate: float | None = None  # runs/s when many are submitted at once
    capped_fanout: int | None = None  # the smaller fan-out already had to be capped

    @property
    def hard_timeout_s(self) -> float:
        return 4 * self.budget_s + 30

    def fit(self, wanted: int, each_s: float, least: int, budget_s: float | None = None) -> int:
        """All `wanted` if they take at most twice the budget (a fast system is not capped for
        being a little over it); else as many as fit in the budget, at least `least`."""
        budget_s = self.budget_s if budget_s is None else budget_s
        if wanted * each_s <= 2 * budget_s:
            return wanted
        return max(min(least, wanted), int(budget_s / each_s))

    def measured(
        self, workload: str, metrics: dict[str, float], size: int, wanted: int, seen: Observed
    ) -> Measurement:
        return Measurement(
            self.system.name,
            workload,
            self.round,
            metrics=metrics,
            size=size,
            wanted=wanted,
            load=seen.load,
            usage=seen.usage,
        )

    def failed(self, workload: str, wanted: int, load: float, why: str) -> Measurement:
        return failed(self.system.name, workload, self.round, wanted, load, why)


@dataclass(frozen=True)
class Step:
    workload: str  # the key its measurement is stored under
    wanted: int
    run: Callable[[Session], Awaitable[Measurement]]


async def warm_up(session: Session) -> None:
    """A few round trips before anything is timed; the first may start caches or a zygote."""
    request = {"op": "round_trips", "count": WARM_UP_RUNS, "budget_s": 60, "timeout_s": 120}
    reply = await session.running.driver.call(request, 180)
    latencies = reply["latencies_ms"]
    if len(latencies) < WARM_UP_RUNS:
        raise DriverError("the warm-up runs did not finish in time")
    session.latency_s = sorted(latencies)[len(latencies) // 2] / 1000


def round_trips(count: int) -> Step:
    async def run(session: Session) -> Measurement:
        request = {
            "op": "round_trips",
            "count": session.fit(count, session.latency_s, 10),
            "budget_s": 2 * session.budget_s,  # in case the warm-up was faster than the rest
            "timeout_s": 60,
        }
        seen = await observe(
            session.running, request, session.hard_timeout_s, lambda r: len(r["latencies_ms"])
        )
        latencies = seen.reply["latencies_ms"]
        if seen.reply["timed_out"] or not latencies:
            return session.failed("W1", count, seen.load, "timeout")
        session.latency_s = percentile(latencies, 50) / 1000
        metrics = {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}
        return session.measured("W1", metrics, len(latencies), count, seen)

    return Step("W1", count, run)


async def _burst_once(session: Session, count: int) -> tuple[float, int, bool]:
    request = {"op": "burst", "count": count, "timeout_s": session.hard_timeout_s - 10}
    reply = await session.running.driver.call(request, session.hard_timeout_s)
    return float(reply["seconds"]), int(reply["completed"]), bool(reply["timed_out"])


async def _sizing_rate(session: Session, size: int, most: int) -> float | None:
    """Runs/s of bursts growing 4x from `size` until one takes a quarter of the budget.

    A small burst mostly measures one round trip; a bigger one says what the system sustains.
    The bursts also warm the system up. None: a burst timed out.
    """
    while True:
        seconds, done, timed_out = await _burst_once(session, size)
        if timed_out:
            return None
        if size >= most or seconds >= session.budget_s / 4:
            return done / seconds
        size = min(most, size * 4)


def burst(count: int, probe: int, slots: int) -> Step:
    key = f"W2@{slots}"

    async def run(session: Session) -> Measurement:
        rate = await _sizing_rate(session, min(probe, count), count)
        if rate is None:
            return session.failed(key, count, procstat.load_average(), "timeout")
        size = session.fit(count, 1 / rate, probe)
        request = {"op": "burst", "count": size, "timeout_s": session.hard_timeout_s - 10}
        seen = await observe(
            session.running, request, session.hard_timeout_s, lambda r: r["completed"]
        )
        if seen.reply["timed_out"]:
            return session.failed(key, count, seen.load, "timeout")
        session.rate = size / seen.reply["seconds"]
        metrics = {"runs_per_s": session.rate, "seconds": seen.reply["seconds"]}
        return session.measured(key, metrics, size, count, seen)

    return Step(key, count, run)


def fanout(children: int, probe: int, budget_s: float) -> Step:
    """A parent awaiting `children`: its own `budget_s`, so that a fan-out of 1,000 finishes
    where a system starts some tens of runs a second (RQ takes about 18 s)."""
    key = f"W3/{children}"

    async def run(session: Session) -> Measurement:
        if session.capped_fanout is not None:
            why = f"skipped: {session.capped_fanout} children already filled the budget"
            return session.failed(key, children, procstat.load_average(), why)
        if session.rate is None:
            session.rate = await _sizing_rate(session, probe, children) or 1.0
        size = session.fit(children, 1 / session.rate, 10, budget_s)
        if size < children:
            session.capped_fanout = size
        hard_timeout_s = max(session.hard_timeout_s, 4 * budget_s + 30)
        request = {"op": "fanout", "children": size, "timeout_s": hard_timeout_s - 10}
        seen = await observe(session.running, request, hard_timeout_s, lambda r: size + 1)
        if seen.reply["timed_out"]:
            return session.failed(key, children, seen.load, "timeout")
        return session.measured(key, {"seconds": seen.reply["seconds"]}, size, children, seen)

    return Step(key, children, run)


def chain(depth: int) -> Step:
    async def run(session: Session) -> Measurement:
        # a level costs about a round trip plus its parent's resumption
        size = session.fit(depth, 1.5 * session.latency_s, 3)
        request = {"op": "chain", "depth": size, "timeout_s": session.hard_timeout_s - 10}
        seen = await observe(session.running, request, session.hard_timeout_s, lambda r: size)
        if seen.reply["timed_out"]:
            return session.failed("W4", depth, seen.load, "timeout")
        return session.measured("W4", {"seconds": seen.reply["seconds"]}, size, depth, seen)

    return Step("W4", depth, run)


def narrow_steps(workloads: tuple[str, ...], sizes: Sizes) -> list[Step]:
    """What runs on the system started with the usual 2 slots, in order."""
    steps = []
    if "W1" in workloads:
        steps.append(round_trips(sizes.round_trips))
    if "W2" in workloads:
        steps.append(burst(sizes.burst, sizes.probe, sizes.slots))
    if "W3" in workloads:
        steps += [fanout(n, sizes.probe, sizes.fanout_budget_s) for n in sorted(sizes.fanouts)]
    if "W4" in workloads:
        steps.append(chain(sizes.chain))
    return steps
