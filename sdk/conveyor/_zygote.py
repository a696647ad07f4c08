"""A warm worker interpreter: imports a version's entry point once, forks a child per attempt.

The local executor starts it, instead of the start command, for start commands of the form
``conveyor-worker module:app`` or ``render-workflows module:app``::

    PYTHON -c BOOT /path/to/_zygote.py FD VIEW SCRIPT module:app

in the version's folder and with the version's task environment. It runs the standard library
only until it imports the user's code, so it can be run by any virtualenv's interpreter. It reads
the console script ``SCRIPT`` (e.g. ``.../bin/render-workflows``), imports what it imports and the
user's ``module``, then serves fork requests on the inherited socket ``FD``, one JSON object per
line. ``VIEW`` is ``-`` or the sandbox's view (`conveyor._sandbox.View` as JSON): the zygote then
enters it before it reads any of the user's code, and each child is born in an attempt's own
namespaces (or enters them, where `clone`'s number is not known) before it runs the task.

- zygote → platform, once: ``{"ready": pid}`` or ``{"unusable": reason}`` (then it exits);
- platform → zygote: ``{"fork": id, "env": {...}, "memory_bytes": n | null, "sandbox": {...} |
  null}`` with open files passed beside it (SCM_RIGHTS): the attempt's log, then the
  ``cgroup.procs`` files it joins (``sandbox.join_fds`` of them);
- zygote → platform: ``{"forked": id, "pid": pid}`` or ``{"forked": id, "error": message}``;
- zygote → platform: ``{"exited": pid, "code": code}`` when a child ends (negative: its signal).

Each child leaves the zygote's loop, takes its own process group, the attempt's environment, log
and memory limit, and runs the console script as ``__main__`` — what a spawned
``SCRIPT module:app`` would do, minus the interpreter's start and the imports. The zygote exits
when the platform closes the socket; children that still run are left to the platform's
reconciliation.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import functools
import gc
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import selectors
import signal
import socket
import sys
import threading
import traceback
import types
from dataclasses import dataclass, replace
from typing import Any, NoReturn

BOOT = (
    "import sys, types\n"
    "path = sys.argv[1]\n"
    f"module = types.ModuleType({__name__!r})\n"
    "module.__file__ = path\n"
    "sys.modules[module.__name__] = module\n"
    "exec(compile(open(path, 'rb').read(), path, 'exec'), module.__dict__)\n"
    "module.main(sys.argv[2:])\n"
)
# modules the run mode imports on first use: imported here once, not in every child; an SDK's own
# only when the entry point uses that SDK
WARM_MODULES = ("asyncio", "concurrent.futures.thread", "http.client", "json", "base64", "uuid")
WARM_SDK_MODULES = {
    # `_uds_async`: what a task with children or an async task imports on its first request
    "conveyor": ("conveyor._worker", "conveyor._uds", "conveyor._uds_async", "conveyor._inputs"),
    "render": ("render.workflows.runner", "render.workflows.executor", "render.version"),
    "render_sdk": (
        "render_sdk.workflows.runner",
        "render_sdk.workflows.executor",
        "render_sdk.version",
    ),
}
# Render's SDKs put their version in each request's User-Agent, read from the installed metadata:
# cold, that scans every folder of sys.path (2 ms); looked up once here, each child finds the
# scans cached
WARM_SDK_DISTRIBUTIONS = {"render": "render", "render_sdk": "render_sdk"}
# ... and even warm, each request reads and parses the metadata file again (twice a run). The
# version cannot change under a zygote (the environment is its version's own), so the SDK's
# `get_version` is given the answer of its first call to keep
SDK_VERSION_MODULES = ("render.version", "render_sdk.version")
_READ_BYTES = 1 << 16
_MAX_FDS = 64
_SANDBOX_MODULE = "conveyor_sandbox"


class Unusable(Exception):
    """The start command cannot be served by forking; the platform spawns it instead."""


@dataclass(frozen=True)
class Attempt:
    """What a child needs to become an attempt's instance."""

    env: dict[str, str]
    log_fd: int
    memory_bytes: int | None
    sandbox: dict[str, Any] | None = None  # `_sandbox.Instance`'s fields, join_fds as fds


@dataclass(frozen=True)
class Entry:
    """The console script, compiled once, and the argv it runs with."""

    script: str
    code: types.CodeType
    argv: list[str]


def check_console_script(tree: ast.Module, script: str) -> None:
    """Raises Unusable unless the script only imports and runs ``main()`` under ``__main__``.

    Args:
        tree: The script's syntax tree.
        script: Its path, for the message.
    """
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        if isinstance(node, ast.If) and _is_main_guard(node.test):
            continue
        raise Unusable(f"{script} does more than a console script at import (line {node.lineno})")


def _is_main_guard(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def prepare(script: str, args: list[str]) -> Entry:
    """Imports what the console script and the user's ``module:app`` need.

    Args:
        script: The console script's path.
        args: Its arguments: ``["module:app"]``.

    Returns:
        The entry to run in each child.

    Raises:
        Unusable: The script or the user's module cannot be served by forking.
    """
    if len(args) != 1 or ":" not in args[0]:
        raise Unusable(f"expected one MODULE:ATTRIBUTE argument, got {args!r}")
    with open(script, "rb") as handle:
        source = handle.read()
    try:
        tree = ast.parse(source, script)
    except SyntaxError as exc:
        raise Unusable(f"{script} is not a Python script: {exc}") from None
    check_console_script(tree, script)
    code = compile(tree, script, "exec")
    # what running the script would put first on sys.path: its own (resolved) folder
    sys.path[0] = os.path.dirname(os.path.realpath(script))
    sys.argv = [script, *args]
    exec(code, {"__name__": "conveyor_zygote_preload", "__file__": script})
    _import_user_module(args[0])
    _warm_up()
    if threading.active_count() > 1:
        raise Unusable("importing the workflow started threads, which a fork would not carry")
    # What is imported now stays as it is in every child: out of the collector's sight, so
    # that no child copies the zygote's pages just to look at its objects.
    gc.collect()
    gc.freeze()
    return Entry(script, code, [script, *args])


def _warm_up() -> None:
    names = list(WARM_MODULES)
    for sdk, modules in WARM_SDK_MODULES.items():
        if sdk in sys.modules:
            names.extend(modules)
    for name in names:
        with contextlib.suppress(ImportError):  # an SDK version without that module
            importlib.import_module(name)
    for sdk, distribution in WARM_SDK_DISTRIBUTIONS.items():
        if sdk in sys.modules:
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                importlib.metadata.version(distribution)
            platform.uname()  # and the rest of the User-Agent, each cached by `platform`
            platform.python_version()
    _keep_sdk_versions()


def _keep_sdk_versions() -> None:
    for name in SDK_VERSION_MODULES:
        module = sys.modules.get(name)
        lookup = getattr(module, "get_version", None)
        if module is None or not callable(lookup):
            continue  # not imported, or an SDK version that looks it up another way
        try:
            version = lookup()
        except Exception:
            continue
        if isinstance(version, str):
            vars(module)["get_version"] = functools.partial(str, version)


def _import_user_module(target: str) -> None:
    """Imports ``module`` of ``module:attribute`` as both CLIs do, from the working directory.

    The CLI itself inserts the working directory into ``sys.path`` again in each child, so
    ``sys.path`` is left as it was.
    """
    module_name, _, attribute = target.rpartition(":")
    saved = list(sys.path)
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise Unusable(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path[:] = saved
    if not hasattr(module, attribute):
        raise Unusable(f"module {module_name!r} has no attribute {attribute!r}")


class Zygote:
    """Serves fork requests on the platform's socket until it closes."""

    def __init__(self, control: socket.socket) -> None:
        """Uses ``control`` for requests and reports.

        Args:
            control: The socket the platform handed over.
        """
        self._control = control
        self._buffer = b""
        self._fds: list[int] = []  # passed beside requests not yet served, in order
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector = selectors.DefaultSelector()
        self._sandbox: types.ModuleType | None = None

    def send(self, message: dict[str, Any]) -> None:
        """Writes one report line.

        Args:
            message: The report.
        """
        self._control.sendall(json.dumps(message).encode() + b"\n")

    def serve(self, sandbox: types.ModuleType | None = None) -> Attempt | None:
        """Forks a child per request; returns in a child (its attempt), or None at the end.

        Args:
            sandbox: `conveyor._sandbox`, when this zygote entered a view: a child for a
                request with a sandbox is then born in its instance's namespaces.

        Returns:
            The attempt, in a child; None in the zygote once the platform closed the socket.
        """
        self._sandbox = sandbox
        signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
        signal.set_wakeup_fd(self._wake_write)
        self._selector.register(self._control, selectors.EVENT_READ)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        while True:
            for key, _ in self._selector.select():
                if key.fileobj == self._wake_read:
                    self._drain_wakeups()
                    self._reap()
                    continue
                data, fds, _flags, _address = socket.recv_fds(self._control, _READ_BYTES, _MAX_FDS)
                self._fds.extend(fds)
                if not data:
                    return None
                for request in self._requests(data):
                    attempt = self._fork(request)
                    if attempt is not None:
                        return attempt

    def _requests(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def _take_fds(self, count: int) -> list[int]:
        taken, self._fds = self._fds[:count], self._fds[count:]
        return taken

    def _fork(self, request: dict[str, Any]) -> Attempt | None:
        sandbox = request.get("sandbox")
        fds = self._take_fds(1 + (int(sandbox["join_fds"]) if sandbox else 0))
        if sandbox is not None:
            sandbox = {**sandbox, "join_fds": tuple(fds[1:])}
        attempt = Attempt(request["env"], fds[0], request.get("memory_bytes"), sandbox)
        sys.stdout.flush()
        sys.stderr.flush()
        started_read, started_write = os.pipe()
        try:
            pid, attempt = self._new_process(attempt)
        except OSError as exc:
            os.close(started_read)
            os.close(started_write)
            for fd in fds:
                os.close(fd)
            self.send({"forked": request["fork"], "error": f"fork failed: {exc}"})
            return None
        if pid == 0:
            # its own session and process group, as a spawned instance has, before the platform
            # learns the pid: a stop right after the start then reaches the whole group
            os.setsid()
            os.close(started_read)
            os.close(started_write)
            self._leave()
            return attempt
        for fd in fds:
            os.close(fd)
        os.close(started_write)
        os.read(started_read, 1)  # end of file once the child has its session (or is gone)
        os.close(started_read)
        self.send({"forked": request["fork"], "pid": pid})
        return None

    def _new_process(self, attempt: Attempt) -> tuple[int, Attempt]:
        """A child for `attempt`, born in its instance's namespaces where it has a sandbox and
        this machine allows; else a fork (the child then enters them itself)."""
        sandbox = self._sandbox
        if sandbox is None or attempt.sandbox is None:
            return os.fork(), attempt
        try:
            born = sandbox.fork_into_instance(attempt.sandbox.get("network", True))
        except sandbox.SandboxError as exc:
            raise OSError(str(exc)) from None
        if born is None:
            return os.fork(), attempt
        pid, ids = born
        return pid, replace(attempt, sandbox={**attempt.sandbox, "born_as": ids})

    def _leave(self) -> None:
        """In a child: drop everything of the zygote's before becoming an attempt."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self._selector.close()
        for fd in self._take_fds(len(self._fds)):  # other attempts' files
            os.close(fd)
        os.close(self._wake_read)
        os.close(self._wake_write)
        self._control.close()

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_read, 512):
                pass
        except BlockingIOError:
            pass

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.send({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def become_attempt(attempt: Attempt, entry: Entry, sandbox: types.ModuleType | None) -> None:
    """In a child: the attempt's process group, environment, log, limits and sandbox, as a
    spawn has.

    Args:
        attempt: What the platform asked for.
        entry: The console script to run.
        sandbox: `conveyor._sandbox`, when the zygote entered a view.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.clear()
    os.environ.update(attempt.env)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(attempt.log_fd, 1)
    os.dup2(attempt.log_fd, 2)
    os.close(null)
    os.close(attempt.log_fd)
    if attempt.memory_bytes:
        limit = attempt.memory_bytes
        # a hard limit below the plan's: the host's limit stands
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    if sandbox is not None and attempt.sandbox is not None:
        try:
            sandbox.enter_instance(sandbox.Instance(**attempt.sandbox))
        except sandbox.SandboxError as exc:
            sys.stderr.write(f"sandbox: {exc}\n")
            sys.stderr.flush()
            os._exit(126)
    elif attempt.sandbox is not None:
        sys.stderr.write("sandbox: the zygote has no view to enter an instance from\n")
        os._exit(126)
    sys.argv = list(entry.argv)
    sys.modules.pop(__name__, None)  # nothing of the zygote is left for the task to see
    for name in [n for n in sys.modules if n.split(".")[0] == _SANDBOX_MODULE]:
        sys.modules.pop(name, None)


def run_entry(entry: Entry) -> NoReturn:
    """Runs the console script as ``__main__``, then ends the child as an interpreter would.

    Its end skips tearing the interpreter down object by object: in a child that would touch,
    and so copy, every page it shares with the zygote. What an exit must do is done: threads
    are joined, ``atexit`` functions run, output is flushed.

    Args:
        entry: The console script.
    """
    main_module = types.ModuleType("__main__")
    main_module.__file__ = entry.script
    sys.modules["__main__"] = main_module
    try:
        exec(entry.code, main_module.__dict__)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    _end(code)


def _exit_code(value: object) -> int:
    """What ``sys.exit(value)`` makes the process's exit code, as the interpreter does."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    sys.stderr.write(f"{value}\n")
    return 1


def _end(code: int) -> NoReturn:
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()  # non-daemon threads, as at any interpreter's exit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def load_sandbox() -> types.ModuleType:
    """`conveyor._sandbox`, from beside this file (the version's environment may not have
    `conveyor`, or another version of it)."""
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sandbox")
    spec = importlib.util.spec_from_file_location(
        _SANDBOX_MODULE, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_SANDBOX_MODULE] = module
    spec.loader.exec_module(module)
    return module


def enter_sandbox(view_json: str) -> tuple[types.ModuleType, list[str]]:
    """Enters the sandbox's view before any of the user's code is read.

    Returns:
        The sandbox module, and the folders shown under /tmp (kept in each attempt's own).
    """
    sandbox = load_sandbox()
    view = sandbox.View.from_json(view_json)
    binds = sandbox.enter_view(
        view, os.getcwd(), new_user_namespace=os.geteuid() != 0, fresh_proc=False
    )
    keep = [b.destination for b in binds if b.destination.startswith("/tmp/")]
    return sandbox, keep


def main(argv: list[str]) -> None:
    """The zygote's entry: ``FD VIEW SCRIPT module:app``.

    Args:
        argv: The arguments after the zygote's own path.
    """
    control = socket.socket(fileno=int(argv[0]))
    zygote = Zygote(control)
    sandbox: types.ModuleType | None = None
    keep: list[str] = []
    if argv[1] != "-":
        try:
            sandbox, keep = enter_sandbox(argv[1])
        except Exception as exc:
            zygote.send({"unusable": f"sandbox: {exc}"})
            return
    try:
        entry = prepare(argv[2], argv[3:])
    except Unusable as exc:
        zygote.send({"unusable": str(exc)})
        return
    zygote.send({"ready": os.getpid()})
    attempt = zygote.serve(sandbox)
    if attempt is None:
        return
    if attempt.sandbox is not None:
        attempt = Attempt(
            attempt.env, attempt.log_fd, attempt.memory_bytes, {**attempt.sandbox, "keep": keep}
        )
    become_attempt(attempt, entry, sandbox)
    run_entry(entry)
