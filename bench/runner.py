"""Every selected workload on one system for one round: start it, measure, restart if need be."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from bench import admission, checkpoints, procstat, sleeping_runs
from bench.driver_client import DriverError, DriverTimeout
from bench.launch import open_target
from bench.options import Options
from bench.processes import StartError
from bench.queue_fill import QueueFillError
from bench.report import describe
from bench.results import Measurement, failed
from bench.systems import System, runs_workload
from bench.targets import Place
from bench.workloads import Session, Step, burst, narrow_steps, warm_up

Say = Callable[[str], None]
# what a system that breaks raises; anything else is a bug of the harness and stops it
TROUBLE = (StartError, DriverError, QueueFillError, asyncpg.PostgresError, OSError)


class Runner:
    def __init__(self, options: Options, place: Place, say: Say) -> None:
        self.options = options
        self.place = place
        self.say = say
        self.versions: dict[str, str] = {}  # what the drivers reported

    def _report(self, round: int, measurement: Measurement) -> Measurement:
        prefix = f"[{round}/{self.options.rounds}] {measurement.system:<36}"
        self.say(f"{prefix} {measurement.workload:<10} {describe(measurement)}")
        return measurement

    async def system(self, system: System, round: int) -> list[Measurement]:
        sizes = self.options.sizes
        chosen = tuple(w for w in self.options.workloads if runs_workload(system, w))
        out = await self._steps(system, round, sizes.slots, narrow_steps(chosen, sizes))
        if "W2" in chosen:
            wide = burst(sizes.burst, sizes.probe, sizes.wide_slots)
            out += await self._steps(system, round, sizes.wide_slots, [wide])
        if "W5" in chosen:
            out += await self._admission(system, round)
        if "W6" in chosen:
            out.append(self._report(round, await self._checkpoints(system, round)))
        return out

    async def after_round(self, system: System, round: int) -> list[Measurement]:
        """W7, once every system has had the round's other workloads: the teardown of its
        hundreds of processes loads none of their figures."""
        if "W7" not in self.options.workloads or not runs_workload(system, "W7"):
            return []
        return [self._report(round, await self._sleepers(system, round))]

    async def _sleepers(self, system: System, round: int) -> Measurement:
        sizes = self.options.sizes
        try:
            return await sleeping_runs.sleepers(system, round, sizes)
        except (*TROUBLE, RuntimeError) as exc:  # RuntimeError: a run did not start or end
            load = procstat.load_average()
            return failed(system.name, "W7", round, sizes.sleepers, load, _error(exc))

    async def _checkpoints(self, system: System, round: int) -> Measurement:
        steps = self.options.sizes.checkpoints
        try:
            return await checkpoints.one_flow(system, round, steps)
        except (*TROUBLE, RuntimeError) as exc:  # RuntimeError: the flow or its loop failed
            return failed(system.name, "W6", round, steps, procstat.load_average(), _error(exc))

    async def _steps(
        self, system: System, round: int, slots: int, steps: list[Step]
    ) -> list[Measurement]:
        out: list[Measurement] = []
        todo = list(steps)
        known: Session | None = None
        while todo:
            try:
                async with open_target(system, slots, self.place) as running:
                    session = Session(running, system, round, self.options.budget_s)
                    if known is not None:  # a restart keeps what was learned of its speed
                        session.latency_s, session.rate = known.latency_s, known.rate
                        session.capped_fanout = known.capped_fanout
                    known = session
                    self.versions.update(running.driver.ready)
                    await warm_up(session)
                    while todo:
                        measurement = await self._step(session, todo.pop(0))
                        out.append(self._report(round, measurement))
                        if measurement.failure and not measurement.failure.startswith("skipped"):
                            break  # it may have left work running: restart before the next
            except TROUBLE as exc:
                why = _error(exc)
                self.say(f"{system.name}: {why}")
                load = procstat.load_average()
                for step in todo:
                    lost = failed(system.name, step.workload, round, step.wanted, load, why)
                    out.append(self._report(round, lost))
                todo = []
        return out

    async def _step(self, session: Session, step: Step) -> Measurement:
        try:
            return await step.run(session)
        except TROUBLE as exc:
            why = "timeout" if isinstance(exc, DriverTimeout) else _error(exc)
            return session.failed(step.workload, step.wanted, procstat.load_average(), why)

    async def _admission(self, system: System, round: int) -> list[Measurement]:
        depths = self.options.sizes.queue_depths
        out: list[Measurement] = []
        for depth in depths:
            try:
                measurement = await admission.one_depth(
                    system, round, depth, self.options, self.place
                )
            except TROUBLE as exc:
                why = _error(exc)
                load = procstat.load_average()
                measurement = failed(system.name, f"W5/{depth}", round, depth, load, why)
            out.append(self._report(round, measurement))
        ratio = admission.ratio(system, round, out)
        if ratio is not None:
            out.append(self._report(round, ratio))
        return out


def _error(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"error: {type(exc).__name__}: {first}"
