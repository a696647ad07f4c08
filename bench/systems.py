"""What is compared: Conveyor's configurations and the two peers, and how to pick some of them."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    CONVEYOR = "conveyor"
    CELERY = "celery"  # prefork pool: long-lived processes share runs
    RQ = "rq"  # a forked work horse per job


@dataclass(frozen=True)
class System:
    """One configuration under test; `name` is what `--systems` patterns match."""

    kind: Kind
    mode: str = ""  # Conveyor: "zygote" (warm fork server) or "spawn" (interpreter per attempt)
    sdk: str = ""  # Conveyor: the worker's SDK, "conveyor-sdk" or "render-sdk"
    database: str = ""  # Conveyor: "sqlite" or "postgres"
    sandbox: bool = True  # Conveyor: each run in its sandbox (`off`: what the sandbox costs)

    @property
    def name(self) -> str:
        if self.kind is not Kind.CONVEYOR:
            return self.kind.value
        parts = (self.kind.value, self.mode, self.sdk, self.database)
        return "/".join(parts if self.sandbox else (*parts, "no-sandbox"))

    @property
    def group(self) -> str:
        """The column of the summary table this configuration's figures go to."""
        if self.kind is Kind.CONVEYOR:
            return f"Conveyor {self.mode}" + ("" if self.sandbox else ", no sandbox")
        return GROUP_OF_PEER[self.kind]

    @property
    def is_peer(self) -> bool:
        return self.kind is not Kind.CONVEYOR

    @property
    def start_command(self) -> str:
        if self.sdk == "render-sdk":
            return "render-workflows main:app"
        return "conveyor-worker main:app"

    @property
    def workflow_folder(self) -> str:
        """The folder under bench/workflows/ holding this configuration's main.py."""
        return self.sdk.replace("-", "_")


GROUP_OF_PEER = {Kind.RQ: "RQ (fork per job)", Kind.CELERY: "Celery (prefork)"}

CONVEYOR_SYSTEMS = (
    *(
        System(Kind.CONVEYOR, mode, sdk, database)
        for mode in ("zygote", "spawn")
        for sdk in ("conveyor-sdk", "render-sdk")
        for database in ("sqlite", "postgres")
    ),
    # the sandbox's cost: the same runs, unsandboxed, in the same invocation
    *(
        System(Kind.CONVEYOR, "zygote", "conveyor-sdk", database, sandbox=False)
        for database in ("sqlite", "postgres")
    ),
)
ALL_SYSTEMS: tuple[System, ...] = (*CONVEYOR_SYSTEMS, System(Kind.RQ), System(Kind.CELERY))


GROUPS = (
    "Conveyor zygote",
    "Conveyor zygote, no sandbox",
    "Conveyor spawn",
    GROUP_OF_PEER[Kind.RQ],
    GROUP_OF_PEER[Kind.CELERY],
)


def group_of(name: str) -> str:
    """The summary table's column of the system called `name`."""
    for system in ALL_SYSTEMS:
        if system.name == name:
            return system.group
    raise KeyError(name)


class SelectionError(ValueError):
    """A `--systems` or `--workloads` value that selects nothing known."""


def select_systems(patterns: Sequence[str]) -> list[System]:
    """Systems whose name matches any shell-style pattern, e.g. `conveyor/zygote/*` or `rq`."""
    if not patterns:
        return list(ALL_SYSTEMS)
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(s.name, pattern) for s in ALL_SYSTEMS):
            known = ", ".join(s.name for s in ALL_SYSTEMS)
            raise SelectionError(f"--systems {pattern!r} matches none of: {known}")
    return [s for s in ALL_SYSTEMS if any(fnmatch.fnmatchcase(s.name, p) for p in patterns)]


WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7")


def select_workloads(names: Iterable[str]) -> list[str]:
    chosen = [name.strip().upper() for name in names if name.strip()]
    unknown = [name for name in chosen if name not in WORKLOADS]
    if unknown:
        raise SelectionError(f"unknown workload(s) {', '.join(unknown)}; known: W1 to W7")
    return [w for w in WORKLOADS if w in chosen] if chosen else list(WORKLOADS)


def runs_workload(system: System, workload: str) -> bool:
    """W5 (queue depth) is about Conveyor's admission on PostgreSQL; its SDK does not matter.
    W6 (a flow's checkpoint) needs Conveyor's SDK: flows are its own. W7 (hundreds of runs
    asleep) is about one host's instances: once per database, zygote and sandbox on."""
    if workload == "W5":  # admission: no instance runs, so the sandbox does not matter either
        return system.database == "postgres" and system.sdk == "conveyor-sdk" and system.sandbox
    if workload == "W6":
        return system.kind is Kind.CONVEYOR and system.sdk == "conveyor-sdk"
    if workload == "W7":
        conveyor = system.kind is Kind.CONVEYOR and system.sdk == "conveyor-sdk"
        return conveyor and system.mode == "zygote" and system.sandbox
    return True
