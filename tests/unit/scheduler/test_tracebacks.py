"""Stack traces found in a worker's log: Python tracebacks and JavaScript stacks."""

from __future__ import annotations

from pathlib import Path

from scheduler.tracebacks import (
    TS_SDK_NOTE,
    TS_SDK_REQUEST_NOTE,
    explain_sdk_lines,
    last_traceback,
)

# What Render's TypeScript SDK 1.0.0 prints when a task throws (node 20)
TS_FAILURE = """\
starting
Failed to start task server: Error: boom 7
    at Object.func (/srv/app/dist/main.js:12:11)
    at TaskExecutor.executeTask (/srv/app/node_modules/@renderinc/sdk/executor.js:33:45)
    at async startTaskServer (/srv/app/node_modules/@renderinc/sdk/runner.js:26:9)
"""

PY_FAILURE = """\
Traceback (most recent call last):
  File "/srv/main.py", line 3, in f
    raise ValueError("bad")
ValueError: bad
"""


def log(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "attempt.log"
    path.write_text(text)
    return path


def test_a_javascript_stack_is_kept_without_the_sdks_prefix(tmp_path: Path) -> None:
    assert last_traceback(log(tmp_path, TS_FAILURE)) == (
        "Error: boom 7\n"
        "    at Object.func (/srv/app/dist/main.js:12:11)\n"
        "    at TaskExecutor.executeTask (/srv/app/node_modules/@renderinc/sdk/executor.js:33:45)"
        "\n    at async startTaskServer (/srv/app/node_modules/@renderinc/sdk/runner.js:26:9)"
    )


def test_an_errors_own_properties_follow_its_frames(tmp_path: Path) -> None:
    text = "TypeError: nope\n    at f (/a.js:1:1) {\n  code: 'E_NOPE'\n}\nafter\n"
    assert last_traceback(log(tmp_path, text)) == (
        "TypeError: nope\n    at f (/a.js:1:1) {\n  code: 'E_NOPE'\n}"
    )


def test_the_later_of_a_python_and_a_javascript_trace_wins(tmp_path: Path) -> None:
    assert last_traceback(log(tmp_path, TS_FAILURE + PY_FAILURE)) == PY_FAILURE.rstrip("\n")
    found = last_traceback(log(tmp_path, PY_FAILURE + TS_FAILURE))
    assert found is not None and found.startswith("Error: boom 7\n")


def test_a_python_traceback_after_a_prefix_starts_at_its_marker(tmp_path: Path) -> None:
    assert last_traceback(log(tmp_path, "12:00 " + PY_FAILURE + "next\n")) == PY_FAILURE.rstrip()


def test_no_trace(tmp_path: Path) -> None:
    assert last_traceback(log(tmp_path, "hello\n    at the bottom\n")) is None
    assert last_traceback(log(tmp_path, "    at f (/a.js:1:1)\n")) is None
    assert last_traceback(tmp_path / "missing.log") is None


def test_the_sdks_misleading_line_is_explained_once(tmp_path: Path) -> None:
    path = log(tmp_path, TS_FAILURE.rstrip("\n"))
    assert explain_sdk_lines(path) is True
    assert explain_sdk_lines(path) is False
    assert path.read_text() == TS_FAILURE + TS_SDK_NOTE
    assert TS_SDK_NOTE.startswith('[conveyor] "Failed to start task server" above is how')
    plain = log(tmp_path, PY_FAILURE)
    assert explain_sdk_lines(plain) is False and plain.read_text() == PY_FAILURE


def test_a_refused_request_is_explained_as_such(tmp_path: Path) -> None:
    path = log(tmp_path, 'Failed to start task server: Error: HTTP 409: {"message": "gone"}\n')
    assert explain_sdk_lines(path) is True
    assert path.read_text().endswith(
        '[conveyor] "Failed to start task server" above is Render\'s TypeScript SDK saying '
        "that Conveyor refused a request of the worker (HTTP 409, for the reason in that line); "
        "it is not an error of the task's code.\n"
    )
    assert TS_SDK_REQUEST_NOTE.format(status=409) in path.read_text()
    assert explain_sdk_lines(path) is False
