"""A system started for measuring: its control-plane processes and a driver to give it work."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.driver_client import Driver
from bench.systems import Kind

FOLDER_NAME = re.compile(r"\d{8}-\d{6}-\d+")
KEEP = 4


@dataclass(frozen=True)
class Running:
    """A started system: `control` are the pids whose own CPU is the control plane's."""

    control: tuple[int, ...]
    driver: Driver


@dataclass
class Place:
    """Where this invocation keeps data dirs and logs: <work dir>/<time>/, kept for reading."""

    root: Path
    venvs: dict[Kind, Path] = field(default_factory=dict)
    _count: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def create(cls, base: Path) -> Place:
        root = base / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        root.mkdir(parents=True)
        return cls(root)

    def prune(self) -> None:
        """Keeps the last few invocations' folders, this one's among them (and touches nothing
        else). Called once measuring is over: thousands of files deleted just before a run
        make every file that run creates slower for minutes on some filesystems (an ext4
        without a journal scans past recently freed inodes), and Conveyor creates a log per
        run where its peers create none."""
        ours = sorted(p for p in self.root.parent.iterdir() if FOLDER_NAME.fullmatch(p.name))
        for old in ours[:-KEEP]:
            if old != self.root:
                shutil.rmtree(old, ignore_errors=True)

    def folder(self, label: str) -> Path:
        folder = self.root / f"{next(self._count):04d}-{label.replace('/', '-')}"
        folder.mkdir(parents=True)
        return folder


def clean_env() -> dict[str, str]:
    """The harness's environment without settings meant for some other Conveyor or Render."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "RENDER_"))}
