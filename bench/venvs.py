"""The peers' own virtualenvs under bench/.cache, built from PyPI with pinned versions.

They are never the project's dependencies: the harness creates each once per set of pins (the
folder's name carries a hash of them) and reuses it afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from bench.options import CACHE_DIR
from bench.systems import Kind

PINS: dict[Kind, tuple[str, ...]] = {
    Kind.CELERY: ("celery[redis]==5.6.3", "redis==8.1.0"),
    Kind.RQ: ("rq==2.12.0", "redis==8.1.0"),
}
READY_MARK = ".bench-ready"


class VenvError(RuntimeError):
    """A peer's virtualenv could not be built."""


def venv_folder(kind: Kind, root: Path = CACHE_DIR / "venvs") -> Path:
    pins = PINS[kind]
    key = hashlib.sha256(f"{sys.version_info[:2]} {' '.join(pins)}".encode()).hexdigest()[:10]
    return root / f"{kind.value}-{key}"


async def _run(argv: list[str], log: Path) -> None:
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(*argv, stdout=sink, stderr=sink)
        code = await process.wait()
    if code != 0:
        raise VenvError(f"`{' '.join(argv)}` failed ({code}); see {log}")


async def ensure_venv(kind: Kind, say: Callable[[str], None]) -> Path:
    """The peer's virtualenv, built first if missing; returns its folder."""
    folder = venv_folder(kind)
    if (folder / READY_MARK).exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    log = folder.parent / f"{folder.name}.log"
    say(f"installing {' '.join(PINS[kind])} into {folder} (once)")
    await _run([sys.executable, "-m", "venv", str(folder)], log)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    await _run([*pip, *PINS[kind]], log)
    (folder / READY_MARK).write_text(" ".join(PINS[kind]) + "\n")
    return folder
