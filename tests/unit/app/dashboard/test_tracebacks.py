"""Tracebacks: the user's frames first, the SDK's, libraries' and Python's folded."""

from __future__ import annotations

import pytest

from app.dashboard.tracebacks import library_of, parse

CHAINED = """Traceback (most recent call last):
  File "/srv/app/.venv/lib/python3.11/site-packages/render_sdk/workflows/runner.py", line 80, in run
    result = await task(*args)
             ^^^^^^^^^^^^^^^^^
  File "/srv/app/main.py", line 12, in load
    rows = parse(text)
  File "/srv/app/parsing.py", line 4, in parse
    return int(text)
ValueError: invalid literal for int() with base 10: 'x'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/usr/lib/python3.11/asyncio/runners.py", line 118, in run
    return self._loop.run_until_complete(task)
  File "<frozen importlib._bootstrap>", line 1, in _call
  File "/work/repo/sdk/conveyor/_worker.py", line 80, in _child_outcome
    raise TaskRunError(
conveyor.errors.TaskRunError: Subtask failed:
  ValueError: invalid literal
"""


def test_user_frames_come_first_and_the_rest_is_named() -> None:
    trace = parse(CHAINED)
    assert trace is not None
    assert [f.location for f in trace.user_frames] == [
        'File "/srv/app/main.py", line 12, in load',
        'File "/srv/app/parsing.py", line 4, in parse',
    ]
    assert trace.user_frames[1].code == "return int(text)"
    assert trace.libraries == ["asyncio", "conveyor", "importlib", "render_sdk"]
    assert len(trace.library_frames) == 4
    assert (
        trace.exception
        == "conveyor.errors.TaskRunError: Subtask failed:\n  ValueError: invalid literal"
    )
    assert trace.text == CHAINED


@pytest.mark.parametrize(
    ("path", "library"),
    [
        ("/x/.venv/lib/python3.12/site-packages/httpx/_client.py", "httpx"),
        ("/usr/lib/python3/dist-packages/yaml/__init__.py", "yaml"),
        ("/usr/lib/python3.11/json/decoder.py", "json"),
        ("/usr/lib/python3.11/threading.py", "threading"),
        ("<frozen runpy>", "runpy"),
        ("/work/conveyor/sdk/conveyor/_context.py", "conveyor"),
        ("/home/me/project/tasks.py", None),
        ("C:\\Users\\me\\project\\tasks.py", None),
    ],
)
def test_library_of(path: str, library: str | None) -> None:
    assert library_of(path) == library


@pytest.mark.parametrize(
    "text",
    [None, "", "RuntimeError: no traceback here", "Traceback (most recent call last):\nboom"],
)
def test_text_without_frames_is_not_a_traceback(text: str | None) -> None:
    assert parse(text) is None


JS_STACK = """Error: boom: x
    at Object.func (/srv/app/dist/main.js:12:11)
    at TaskExecutor.executeTask (/srv/app/node_modules/@renderinc/sdk/dist/executor.js:33:45)
    at async /srv/app/node_modules/left-pad/index.js:2:1
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"""


def test_a_javascript_stack_has_its_users_frames_first() -> None:
    stack = parse(JS_STACK)
    assert stack is not None and stack.most_recent_first
    assert stack.exception == "Error: boom: x"
    assert [f.location for f in stack.user_frames] == [
        "at Object.func (/srv/app/dist/main.js:12:11)"
    ]
    assert [f.library for f in stack.library_frames] == ["@renderinc/sdk", "left-pad", "node"]
    assert stack.libraries == ["@renderinc/sdk", "left-pad", "node"]


@pytest.mark.parametrize("text", ["    at f (/a.js:1:1)", "Error: no frames", "at the end"])
def test_javascript_text_without_a_message_and_frames_is_not_a_stack(text: str) -> None:
    assert parse(text) is None
