"""`conveyor dev --env NAME=VALUE`: the value leaves the process's arguments before the engine runs.

Any user of the machine can read a process's arguments (`ps`, /proc/<pid>/cmdline). A value given
inline is there from the moment the shell starts `conveyor dev`, so once its options are checked
the command starts itself again in the same process (`exec`, same pid) with `--env NAME` alone,
and the values in an anonymous file it inherits, reads and closes at once. They reach the tasks as
the workflow's variables, as before. The shell's history still holds them: `--env NAME` (the value
from the environment) and `--env-file` are the ways that never put a value on a command line.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

VALUES_FD_OPTION = "--env-values-fd"  # hidden: how the restarted command finds the values
_ENV = "--env"


def split_inline_values(args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """`args` with each `--env NAME=VALUE` cut to `--env NAME`, and the values cut out (the last
    of a name wins, as in the command). Nothing after `--` is an option."""
    kept: list[str] = []
    values: dict[str, str] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            kept.extend(args[index:])
            break
        if arg == _ENV and index + 1 < len(args):
            name, inline, value = args[index + 1].partition("=")
            if inline:
                values[name] = value
                kept += [_ENV, name]
                index += 2
                continue
        elif arg.startswith(f"{_ENV}="):
            name, inline, value = arg.removeprefix(f"{_ENV}=").partition("=")
            if inline:
                values[name] = value
                kept.append(f"{_ENV}={name}")
                index += 1
                continue
        kept.append(arg)
        index += 1
    return kept, values


def with_values_fd(args: Sequence[str], fd: int) -> list[str]:
    """`args` with the hidden option naming `fd`, placed where it is still an option."""
    at = args.index("--") if "--" in args else len(args)
    return [*args[:at], VALUES_FD_OPTION, str(fd), *args[at:]]


def inline_warning(names: Sequence[str]) -> str:
    listed = ", ".join(sorted(set(names)))
    return (
        f"warning: --env NAME=VALUE puts the value of {listed} in your shell's history, and in "
        "the process list until `conveyor dev` restarts itself without it; use --env NAME "
        "(its value from the environment) or --env-file instead"
    )


def _anonymous_file(data: bytes) -> int:
    """A file with `data`, found by no name, that a command this process `exec`s inherits."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("conveyor-dev-env", 0)
    else:  # macOS: a temporary file (0600), unlinked at once
        fd, path = tempfile.mkstemp(prefix="conveyor-dev-env-")
        os.unlink(path)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    return fd


def restart_without_values(
    argv: Sequence[str], orig_argv: Sequence[str], values: Mapping[str, str]
) -> NoReturn:
    """Become this same command again, `argv` (`sys.argv`) cut of its values, which the new
    image reads from an inherited file named by `--env-values-fd`."""
    kept, _ = split_inline_values(argv[1:])
    fd = _anonymous_file(json.dumps(dict(values)).encode())
    # the interpreter and its own options (-X, -W …) as it was started, then the script
    interpreter = list(orig_argv[: len(orig_argv) - len(argv)]) or [sys.executable]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [*interpreter, argv[0], *with_values_fd(kept, fd)])


def can_restart(argv: Sequence[str]) -> bool:
    """Whether `argv[0]` is a script this interpreter can run again (not `-c` or embedded)."""
    return bool(argv) and Path(argv[0]).is_file()


def read_values(fd: int) -> dict[str, str]:
    """The values `restart_without_values` left in `fd`; the file is closed after."""
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    values = json.loads(b"".join(chunks))
    return {str(name): str(value) for name, value in values.items()}
