"""The machine and the versions the figures were measured with."""

from __future__ import annotations

import platform
import sqlite3
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.options import REPO_ROOT


def _cpu() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    values: dict[str, list[str]] = {}
    for line in lines:
        key, _, value = line.partition(":")
        values.setdefault(key.strip(), []).append(value.strip())
    models = values.get("model name") or [platform.processor() or "unknown CPU"]
    mhz = [float(v) for v in values.get("cpu MHz", [])]
    speed = f", {sum(mhz) / len(mhz):.0f} MHz" if mhz else ""
    return f"{models[0]}, {len(models)} logical CPUs{speed}"


def _memory() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    return "unknown"


def _os() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def describe_machine() -> dict[str, str]:
    return {
        "CPU": _cpu(),
        "memory": _memory(),
        "kernel": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "OS": _os(),
    }


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def conveyor_revision() -> str:
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{commit} (uncommitted changes)" if dirty else commit


def local_versions() -> dict[str, str]:
    """What the harness's own interpreter (the project's .venv, Conveyor's) has."""
    out = {"Python (Conveyor)": platform.python_version(), "Conveyor commit": conveyor_revision()}
    for name in ("render", "render_sdk", "sqlalchemy", "asyncpg", "aiosqlite", "uvicorn"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    out["SQLite"] = sqlite3.sqlite_version
    return out
