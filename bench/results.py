"""What one measurement records, and how it is saved and read back as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Usage:
    """CPU and memory of the system's own processes while one workload ran.

    Control plane: the processes that accept, queue and dispatch work (Conveyor's server, Celery's
    main process, RQ's worker processes). Worker side: every process below them (attempts and
    zygotes, Celery's pool, RQ's work horses). Redis and PostgreSQL are not counted.
    """

    control_cpu_ms_per_run: float
    worker_cpu_ms_per_run: float
    control_rss_peak_mb: float
    total_rss_peak_mb: float
    idle_processes: int  # processes below the control plane before the workload started
    outside_cores: float = 0.0  # CPU something else on the machine used meanwhile, in cores


@dataclass(frozen=True)
class Measurement:
    """One workload on one system in one round.

    `size` is what was measured (round trips, runs, children, levels); it is below `wanted`
    when the time budget capped it. A failed measurement has `failure` and no metrics.
    """

    system: str
    workload: str  # W1, W2@2, W2@20, W3/200, W3/1000, W4, W5/100, W5/100000, W5/ratio
    round: int
    metrics: dict[str, float] = field(default_factory=dict)
    size: int = 0
    wanted: int = 0
    load: float = 0.0  # 1-minute load average when it started
    usage: Usage | None = None
    failure: str | None = None  # "timeout", or what went wrong

    @property
    def capped(self) -> bool:
        return self.failure is None and 0 < self.size < self.wanted


def failed(
    system: str, workload: str, round: int, wanted: int, load: float, why: str
) -> Measurement:
    return Measurement(system, workload, round, wanted=wanted, load=load, failure=why)


def to_json(measurements: list[Measurement]) -> list[dict[str, Any]]:
    return [asdict(m) for m in measurements]


def from_json(rows: list[dict[str, Any]]) -> list[Measurement]:
    out = []
    for row in rows:
        usage = row.pop("usage", None)
        out.append(Measurement(**row, usage=Usage(**usage) if usage else None))
    return out


def save(path: Path, measurements: list[Measurement], extra: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**extra, "measurements": to_json(measurements)}, indent=1))
