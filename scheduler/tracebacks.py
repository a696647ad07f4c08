"""The last stack trace in a captured log: the official SDKs print it instead of sending it.

Python's SDKs print a `Traceback (most recent call last):` block. Render's TypeScript SDK lets a
task's error escape to its own start-up code, which prints `Failed to start task server: ` and
then the error's JavaScript stack (`Error: boom` and its `    at …` frames). That line does not
mean the server failed to start: the server ran the task, and the task threw. The stack is kept
without the SDK's prefix, and the log gets a line saying so (`explain_sdk_lines`).
"""

from __future__ import annotations

import re
from pathlib import Path

_PYTHON_MARKER = "Traceback (most recent call last):"
_TS_SDK_PREFIX = "Failed to start task server: "
# `    at f (/app/dist/main.js:12:11)`, `    at async /app/x.js:3:5`, `    at new C (<anonymous>)`
_JS_FRAME = re.compile(r"^\s+at \S.*(:\d+:\d+\)?|\((native|<anonymous>)\))( \{)?$")
_TAIL_BYTES = 64 * 1024
_MAX_CHARS = 20_000
TS_SDK_NOTE = (
    '[conveyor] "Failed to start task server" above is how Render\'s TypeScript SDK reports an '
    "error thrown by the task: the task server started and ran the task, and the stack after it "
    "is the task's own.\n"
)
# the SDK's own requests to the platform fail as `Error: HTTP 409: {...}`
_TS_SDK_REQUEST_FAILED = re.compile(re.escape(_TS_SDK_PREFIX) + r"Error: HTTP (\d{3})\b")
TS_SDK_REQUEST_NOTE = (
    '[conveyor] "Failed to start task server" above is Render\'s TypeScript SDK saying that '
    "Conveyor refused a request of the worker (HTTP {status}, for the reason in that line); it is "
    "not an error of the task's code.\n"
)


def _tail(log_path: Path) -> str | None:
    try:
        with log_path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(size - _TAIL_BYTES, 0))
            return handle.read().decode(errors="replace")
    except FileNotFoundError:
        return None


def _python_trace(lines: list[str]) -> tuple[int, str] | None:
    starts = [i for i, line in enumerate(lines) if _PYTHON_MARKER in line]
    if not starts:
        return None
    start = starts[-1]
    first = lines[start]
    lines = [*lines[:start], first[first.index(_PYTHON_MARKER) :], *lines[start + 1 :]]
    end = len(lines)
    # the traceback ends at its exception line: the first line after it not indented
    for index in range(start + 1, len(lines)):
        if not lines[index].startswith((" ", "\t")) and not lines[index].startswith(
            ("During handling", "The above exception", _PYTHON_MARKER)
        ):
            end = index + 1
            break
    return start, "\n".join(lines[start:end])


def _javascript_stack(lines: list[str]) -> tuple[int, str] | None:
    frames = [i for i, line in enumerate(lines) if _JS_FRAME.match(line)]
    if not frames:
        return None
    last = frames[-1]
    first = last
    while first > 0 and _JS_FRAME.match(lines[first - 1]):
        first -= 1
    if first == 0:
        return None  # frames with no `Error: message` line before them: not a stack we can name
    header = first - 1
    end = last + 1
    # node prints an error's own properties after its frames: `    at … {`, `  code: 'E1'`, `}`
    if lines[last].rstrip().endswith("{"):
        while end < len(lines) and lines[end - 1].rstrip() != "}":
            end += 1
    block = [lines[header].removeprefix(_TS_SDK_PREFIX), *lines[first:end]]
    return header, "\n".join(block)


def last_traceback(log_path: Path) -> str | None:
    """The last Python traceback or JavaScript stack in the log's last 64 KiB, else None."""
    tail = _tail(log_path)
    if tail is None:
        return None
    lines = tail.splitlines()
    found = [t for t in (_python_trace(lines), _javascript_stack(lines)) if t is not None]
    if not found:
        return None
    _, trace = max(found)
    return trace[:_MAX_CHARS]


def explain_sdk_lines(log_path: Path) -> bool:
    """Append what Render's TypeScript SDK's misleading last `Failed to start task server` line
    means (the task threw, or a request to the platform was refused) to the log."""
    tail = _tail(log_path)
    if tail is None or '[conveyor] "Failed to start task server"' in tail:
        return False
    said = [line for line in tail.splitlines() if line.startswith(_TS_SDK_PREFIX)]
    if not said:
        return False
    refused = _TS_SDK_REQUEST_FAILED.match(said[-1])
    note = TS_SDK_REQUEST_NOTE.format(status=refused.group(1)) if refused else TS_SDK_NOTE
    with log_path.open("a", encoding="utf-8") as handle:
        handle.write(("" if tail.endswith("\n") else "\n") + note)
    return True
