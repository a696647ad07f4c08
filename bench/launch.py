"""Which target module starts which system."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from bench.celery_target import celery_worker
from bench.conveyor_target import conveyor_dev
from bench.rq_target import rq_workers
from bench.systems import Kind, System
from bench.targets import Place, Running


def open_target(system: System, slots: int, place: Place) -> AbstractAsyncContextManager[Running]:
    """Starts `system` with `slots` execution slots; stops it (and cleans up) on exit."""
    if system.kind is Kind.CONVEYOR:
        return conveyor_dev(system, slots, place)
    if system.kind is Kind.CELERY:
        return celery_worker(slots, place)
    return rq_workers(slots, place)
