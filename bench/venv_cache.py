"""First vs second embedded (virtualenv) build of a workflow whose dependencies did not change.

Usage: .venv/bin/python bench/venv_cache.py [--requirement SPEC ...]

Builds a scratch source folder twice with the embedded builder, the second time after changing
only its code. The first build creates the virtualenv and installs the dependencies (by default
a locally made wheel, so no index is needed; pass --requirement to install real packages); the
second must reuse it. Prints both times and their ratio; exits 1 if the second build takes 20 %
of the first or more.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from builder.base import BuildRequest
from builder.log import BuildLog
from builder.venv import VenvBuilder
from core.blobs import LocalBlobStore
from core.build_settings import BuildSettings

LIMIT = 0.20


def local_wheel(folder: Path) -> Path:
    name, version = "benchdep", "1.0"
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": b"VALUE = 42\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    lines = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{path},sha256={digest},{len(data)}")
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{dist}/RECORD", "\n".join([*lines, f"{dist}/RECORD,,"]) + "\n")
    return wheel


async def timed_build(
    builder: VenvBuilder, blobs: LocalBlobStore, source: Path, build_id: str
) -> tuple[float, bool]:
    log = BuildLog(blobs, build_id, steps=2)
    started = time.perf_counter()
    try:
        built = await builder.build(BuildRequest(build_id, "bench", source, ""), log)
    finally:
        await log.close()
    return time.perf_counter() - started, built.cached


async def main(requirements: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as scratch:
        root = Path(scratch)
        source = root / "src"
        source.mkdir()
        listed = requirements or [str(local_wheel(root))]
        (source / "requirements.txt").write_text("\n".join(listed) + "\n")
        (source / "main.py").write_text("VERSION = 1\n")
        blobs = LocalBlobStore(root / "blobs")
        builder = VenvBuilder(root / "venvs", BuildSettings())

        first, first_cached = await timed_build(builder, blobs, source, "bld-first")
        (source / "main.py").write_text("VERSION = 2\n")
        second, second_cached = await timed_build(builder, blobs, source, "bld-second")

    ratio = second / first
    print(f"dependencies:  {', '.join(listed)}")
    print(f"first build:   {first:8.3f} s (virtualenv created: {not first_cached})")
    print(f"second build:  {second:8.3f} s (virtualenv reused:  {second_cached})")
    print(f"second/first:  {ratio:8.1%} (must be < {LIMIT:.0%})")
    return 0 if ratio < LIMIT and second_cached else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirement", action="append", default=[], help="a pip requirement")
    sys.exit(asyncio.run(main(parser.parse_args().requirement)))
