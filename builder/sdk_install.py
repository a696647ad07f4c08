"""Put Conveyor's own SDK (the `conveyor` package, nothing else of the server) into a venv."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import conveyor

# the shape pip gives console scripts: importing it runs nothing, so a zygote can preload it
WORKER_SCRIPT = """#!{python}
import sys

from conveyor._worker_cli import main

if __name__ == "__main__":
    sys.exit(main())
"""


def sdk_package_dir() -> Path:
    return Path(conveyor.__file__).resolve().parent


def sdk_fingerprint() -> str:
    """Changes whenever the SDK's code does, so venvs made with an older SDK are not reused."""
    digest = hashlib.sha256()
    root = sdk_package_dir()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def install_sdk(venv: Path, final_venv: Path) -> None:
    """Copy the package into the venv's site-packages and write its `conveyor-worker` script.

    A copy, not `pip install` of this repository (which would bring the server's own `app`,
    `core`, … packages and their dependencies into the user's environment, where a user's `app`
    package would collide) and not a `.pth` to the server's site-packages (same problem). The
    worker side of the SDK needs only the standard library. `final_venv` is where the venv will
    live once built: the script's interpreter line must name it.
    """
    site = next((venv / "lib").glob("python3*/site-packages"))
    shutil.copytree(
        sdk_package_dir(), site / "conveyor", ignore=shutil.ignore_patterns("__pycache__")
    )
    script = venv / "bin" / "conveyor-worker"
    script.write_text(WORKER_SCRIPT.format(python=final_venv / "bin" / "python"))
    script.chmod(0o755)
