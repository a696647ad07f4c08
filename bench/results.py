"""What one measurement records, and how it is saved and read back as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.options import Sizes


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
    workload: str  # W1, W2@2, W2@20, W3/200, W3/1000, W4, W5/100, W5/100000, W5/ratio, W6, W7
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


@dataclass(frozen=True)
class RunInfo:
    """The invocation itself, as the report states it."""

    command: str
    started: str
    finished: str
    minutes: float
    load_before: str
    load_after: str


@dataclass(frozen=True)
class Record:
    """Everything one invocation measured and the context to read it: results.json."""

    run: RunInfo
    rounds: int
    budget_s: float
    sizes: Sizes
    machine: dict[str, str]
    versions: dict[str, str]
    measurements: list[Measurement]


def measurements_from_json(rows: list[dict[str, Any]]) -> list[Measurement]:
    out = []
    for row in rows:
        usage = row.pop("usage", None)
        out.append(Measurement(**row, usage=Usage(**usage) if usage else None))
    return out


def save(path: Path, record: Record | list[Measurement]) -> None:
    """Writes a whole record, or the measurements so far while the bench still runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(record) if isinstance(record, Record) else {"measurements": record}
    path.write_text(json.dumps(data, indent=1, default=_plain))


def _plain(value: object) -> object:
    if isinstance(value, Measurement):
        return asdict(value)
    raise TypeError(type(value).__name__)


def load(path: Path) -> Record:
    data = json.loads(path.read_text())
    if "run" not in data:
        raise ValueError(f"{path} holds measurements of an unfinished invocation only")
    sizes: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in data["sizes"].items()
    }
    return Record(
        run=RunInfo(**data["run"]),
        rounds=data["rounds"],
        budget_s=data["budget_s"],
        sizes=Sizes(**sizes),
        machine=data["machine"],
        versions=data["versions"],
        measurements=measurements_from_json(data["measurements"]),
    )
