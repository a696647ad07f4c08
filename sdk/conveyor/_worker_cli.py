"""``conveyor-worker module:app``: import the user's app and start it, like ``render-workflows``."""

from __future__ import annotations

import importlib
import os
import sys

from conveyor.errors import WorkerError

USAGE = "usage: conveyor-worker MODULE:ATTRIBUTE (e.g. conveyor-worker main:app)"


def _fail(message: str) -> int:
    sys.stderr.write(f"conveyor-worker: error: {message}\n")
    return 1


def run(argv: list[str]) -> int:
    """Imports ``module:attribute`` from the working directory and calls its ``start()``.

    Args:
        argv: The arguments after the program name.

    Returns:
        The exit code.
    """
    if len(argv) != 1 or ":" not in argv[0]:
        return _fail(f"expected one MODULE:ATTRIBUTE argument\n{USAGE}")
    module_name, _, attribute = argv[0].rpartition(":")
    if not module_name or not attribute:
        return _fail(f"{argv[0]!r} is not MODULE:ATTRIBUTE\n{USAGE}")
    # The user's modules live in the working directory, which comes first.
    cwd = os.getcwd()
    if sys.path[:1] != [cwd]:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return _fail(f"cannot import module {module_name!r}: {exc}")
    app = getattr(module, attribute, None)
    if app is None:
        return _fail(f"module {module_name!r} has no attribute {attribute!r}")
    start = getattr(app, "start", None)
    if not callable(start):
        return _fail(f"{argv[0]} is a {type(app).__name__}, not a Workflows app")
    try:
        start()
    except WorkerError as exc:
        return _fail(str(exc))
    return 0


def main() -> None:
    """Console entry point of ``conveyor-worker``."""
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
