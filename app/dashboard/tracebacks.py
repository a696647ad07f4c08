"""Tracebacks as people read them: the exception, then the frames of their own code, with
the frames of the SDK, libraries and the standard library folded away.

Python: a frame is "library" when its file lives in `site-packages`/`dist-packages`, in the
standard library (`lib/pythonX.Y/`, `<frozen …>`), or in Conveyor's own SDK (`sdk/conveyor/`).
JavaScript stacks (`Error: boom` then `    at f (/app/dist/main.js:3:9)`, most recent call
first): when it lives in `node_modules/<package>` or is Node's own (`node:internal/…`). Every other
frame is the user's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_START = "Traceback (most recent call last):"
_FRAME = re.compile(r'^\s*File "(?P<path>[^"]*)", line (?P<line>\d+)(?:, in (?P<func>.*))?$')
_PACKAGES = re.compile(r"/(?:site|dist)-packages/(?P<name>[^/]+)")
_STDLIB = re.compile(r"/lib/python3\.\d+/(?P<name>[^/]+)")
_OWN_SDK = re.compile(r"/sdk/(?P<name>conveyor)/")
_JS_FRAME = re.compile(r"^\s+at (?:async )?(?:.*? \()?(?P<path>[^()\s]+?):\d+:\d+\)?( \{)?$")
_NODE_MODULES = re.compile(r"/node_modules/(?P<name>@[^/]+/[^/]+|[^/]+)/")


@dataclass(frozen=True)
class Frame:
    location: str  # `File "…", line N, in f` as printed
    code: str  # the source lines printed under it
    library: str | None  # the package it belongs to, None for the user's code


@dataclass(frozen=True)
class Traceback:
    text: str  # as it was captured
    exception: str  # the final `Type: message` line(s)
    frames: tuple[Frame, ...]  # of every exception in the chain, in printed order
    most_recent_first: bool = False  # a JavaScript stack's order

    @property
    def user_frames(self) -> tuple[Frame, ...]:
        return tuple(f for f in self.frames if f.library is None)

    @property
    def library_frames(self) -> tuple[Frame, ...]:
        return tuple(f for f in self.frames if f.library is not None)

    @property
    def libraries(self) -> list[str]:
        return sorted({f.library for f in self.frames if f.library is not None})


def library_of(path: str) -> str | None:
    """The package of a frame's file, or None when it is the user's own code."""
    if path.startswith("<frozen "):
        return path[len("<frozen ") :].rstrip(">").split(".")[0] or "python"
    normal = path.replace("\\", "/")
    for pattern in (_PACKAGES, _OWN_SDK, _STDLIB):
        found = pattern.search(normal)
        if found:
            name = found.group("name")
            return name.removesuffix(".py").split(".")[0] or "python"
    return None


def _javascript_library(path: str) -> str | None:
    if path.startswith("node:"):
        return "node"
    found = _NODE_MODULES.search(path.replace("\\", "/"))
    return found.group("name") if found else None


def _parse_javascript(text: str) -> Traceback | None:
    lines = text.splitlines()
    frames = [
        Frame(line.strip(), "", _javascript_library(found.group("path")))
        for line in lines
        if (found := _JS_FRAME.match(line))
    ]
    if not frames or _JS_FRAME.match(lines[0]):
        return None
    first_frame = next(i for i, line in enumerate(lines) if _JS_FRAME.match(line))
    exception = "\n".join(lines[:first_frame]).strip()
    return Traceback(text, exception, tuple(frames), most_recent_first=True)


def parse(text: str | None) -> Traceback | None:
    """The traceback in `text`, or None when there is no frame to show."""
    if not text:
        return None
    if _START not in text:
        return _parse_javascript(text)
    lines = text.splitlines()
    frames: list[Frame] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        found = _FRAME.match(line)
        if found is None:
            continue
        code: list[str] = []
        while index < len(lines) and _is_code(lines[index]):
            code.append(lines[index].strip())
            index += 1
        frames.append(Frame(line.strip(), "\n".join(code), library_of(found.group("path"))))
    if not frames:
        return None
    return Traceback(text, _last_exception(lines), tuple(frames))


def _is_code(line: str) -> bool:
    """A source line (or caret line) printed under a frame."""
    return line.startswith("    ") and _FRAME.match(line) is None


def _last_exception(lines: list[str]) -> str:
    """The exception line(s) after the last frame: `ValueError: bad` (possibly several lines)."""
    last_frame = max(i for i, line in enumerate(lines) if _FRAME.match(line))
    after = lines[last_frame + 1 :]
    while after and after[0].startswith(("    ", "\t")):
        after = after[1:]
    text = "\n".join(line for line in after if line.strip()).strip()
    return text or lines[-1].strip()
