"""One warm zygote: a fresh interpreter that imported a version's entry point and forks attempts.

The platform side of `conveyor._zygote` (its docstring has the wire). A zygote is a new process
started from the version's own interpreter — never a fork of this threaded control plane — in the
version's folder, with the version's task environment. Forking a child from it costs a few
milliseconds where starting an interpreter and importing the SDK costs ~150 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor import _zygote
from conveyor._sandbox import View
from scheduler.sandbox.identities import Identity

logger = logging.getLogger(__name__)

# start commands a zygote can serve: `PROGRAM module:attribute` of either SDK
ZYGOTE_PROGRAMS = frozenset({"conveyor-worker", "render-workflows"})
ZYGOTE_FILE = str(Path(_zygote.__file__).resolve())
_READY_SECONDS = 60.0
_CLOSE_SECONDS = 5.0
_LINE_LIMIT = 1 << 20


class ZygoteUnusable(Exception):
    """This start command cannot be served by forking; its attempts are spawned instead."""


@dataclass(frozen=True)
class ZygoteEntry:
    """The interpreter, console script and `module:app` a zygote runs."""

    python: str
    script: str
    args: tuple[str, ...]


def zygote_entry(start_command: str, path: str) -> ZygoteEntry | None:
    """How to serve `start_command` from a zygote, or None when it must be spawned.

    Served: `conveyor-worker module:app` and `render-workflows module:app` whose console script
    (found on the task's `path`) names its interpreter on its first line.
    """
    try:
        argv = shlex.split(start_command)
    except ValueError:
        return None
    if len(argv) != 2 or Path(argv[0]).name not in ZYGOTE_PROGRAMS or ":" not in argv[1]:
        return None
    script = shutil.which(argv[0], path=path)
    if script is None:
        return None
    python = _interpreter_of(script)
    if python is None:
        return None
    return ZygoteEntry(python, os.path.abspath(script), (argv[1],))


def _interpreter_of(script: str) -> str | None:
    """The interpreter a console script's `#!` line names (one absolute path, nothing else)."""
    try:
        with open(script, "rb") as handle:
            first = handle.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if len(words) != 1 or not os.path.isabs(words[0]) or not os.access(words[0], os.X_OK):
        return None
    return words[0]


class RequestSender:
    """Sends requests on a non-blocking socket, each with its open files passed beside its
    first bytes (SCM_RIGHTS). Concurrent callers go one at a time: a request the socket takes
    in parts is never split by another's bytes, and only one caller at a time waits for the
    socket to take more (the event loop keeps one writer callback per socket)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = asyncio.Lock()

    async def send(self, data: bytes, fds: Sequence[int]) -> None:
        async with self._lock:
            await self._send(data, fds)

    async def _send(self, data: bytes, fds: Sequence[int]) -> None:
        loop = asyncio.get_running_loop()
        rest = memoryview(data)
        while rest:
            if self._sock.fileno() < 0:
                raise ConnectionResetError("the zygote's socket is closed")
            try:
                if len(rest) == len(data) and fds:
                    sent = socket.send_fds(self._sock, [rest], list(fds))
                else:
                    sent = self._sock.send(rest)
            except BlockingIOError:
                writable: asyncio.Future[None] = loop.create_future()
                loop.add_writer(self._sock, writable.set_result, None)
                try:
                    await writable
                finally:
                    if self._sock.fileno() >= 0:
                        loop.remove_writer(self._sock)
                continue
            rest = rest[sent:]

    def close(self) -> None:
        self._sock.close()


class Zygote:
    """A running zygote; `fork` an attempt from it, `exit_code` to learn how the child ended."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        sender: socket.socket,
        log_path: Path,
        identity: Identity | None = None,
    ) -> None:
        self.process = process
        self.log_path = log_path
        self.identity = identity  # the uid its sandbox runs as (a root control plane's)
        self._reader = reader
        self._writer = writer
        self._sender = RequestSender(sender)  # the same socket: requests, with their files
        loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[int] = loop.create_future()
        self._forks: dict[int, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int | None]] = {}
        self._next_id = 0
        self.started_at = loop.time()
        self.last_used = self.started_at  # since it became ready, once it is
        self._reading = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls,
        entry: ZygoteEntry,
        *,
        cwd: Path,
        env: dict[str, str],
        log_path: Path,
        view: View | None = None,
        identity: Identity | None = None,
    ) -> Zygote:
        """Start the interpreter; `ready()` says when it has imported the entry point.

        With a `view`, the zygote enters that sandbox before it reads any of the user's code
        (as `identity`'s uid when this process is root), and each attempt's child enters
        namespaces of its own.
        """
        ours, theirs = socket.socketpair()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with log_path.open("ab") as log:
                process = await asyncio.create_subprocess_exec(
                    entry.python,
                    "-c",
                    _zygote.BOOT,
                    ZYGOTE_FILE,
                    str(theirs.fileno()),
                    view.to_json() if view is not None else "-",
                    entry.script,
                    *entry.args,
                    cwd=cwd,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    pass_fds=(theirs.fileno(),),
                    start_new_session=True,
                )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        sender = ours.dup()
        sender.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=_LINE_LIMIT)
        return cls(process, reader, writer, sender, log_path, identity)

    @property
    def alive(self) -> bool:
        return self.process.returncode is None and not self._reading.done()

    @property
    def starting(self) -> bool:
        """Importing the entry point still (not ready, not found unusable, not yet late)."""
        now = asyncio.get_running_loop().time()
        return not self._ready.done() and now - self.started_at < _READY_SECONDS

    @property
    def children(self) -> int:
        """Forked children that have not ended yet."""
        return sum(1 for future in self._exits.values() if not future.done())

    async def ready(self) -> None:
        """Once the entry point is imported; ZygoteUnusable if it cannot be."""
        async with asyncio.timeout(_READY_SECONDS):
            await asyncio.shield(self._ready)

    async def fork(
        self,
        env: dict[str, str],
        log: Path,
        memory_bytes: int | None,
        sandbox: dict[str, Any] | None = None,
        join_fds: Sequence[int] = (),
    ) -> int:
        """A child running the attempt; its pid (also its process group).

        The attempt's log is opened here and handed over open (a sandboxed child cannot reach
        the data folder), with `join_fds` (the attempt's `cgroup.procs` files) after it.
        """
        await self.ready()
        loop = asyncio.get_running_loop()
        self._next_id += 1
        request_id = self._next_id
        forked: asyncio.Future[int] = loop.create_future()
        self._forks[request_id] = forked
        request = {"fork": request_id, "env": env, "memory_bytes": memory_bytes, "sandbox": sandbox}
        log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            await self._sender.send(json.dumps(request).encode() + b"\n", [log_fd, *join_fds])
            os.close(log_fd)
            log_fd = -1
            pid = await forked
        finally:
            if log_fd >= 0:
                os.close(log_fd)
            self._forks.pop(request_id, None)
        self._exits.setdefault(pid, loop.create_future())
        self.last_used = loop.time()
        return pid

    def exit_code(self, pid: int) -> asyncio.Future[int | None]:
        """How child `pid` ended (negative: its signal); None if the zygote died before it."""
        future = self._exits.get(pid)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._exits[pid] = future
        return future

    def forget(self, pid: int) -> None:
        self._exits.pop(pid, None)

    async def _read(self) -> None:
        try:
            while line := await self._reader.readline():
                self._on_message(json.loads(line))
        except (OSError, ValueError, asyncio.LimitOverrunError) as exc:
            logger.warning("zygote %s: unreadable report: %s", self.process.pid, exc)
        finally:
            self._on_gone()

    def _on_message(self, message: dict[str, Any]) -> None:
        if "ready" in message:
            self.last_used = asyncio.get_running_loop().time()
            self._ready.set_result(int(message["ready"]))
        elif "unusable" in message:
            self._ready.set_exception(ZygoteUnusable(str(message["unusable"])))
        elif "forked" in message:
            forked = self._forks.get(int(message["forked"]))
            if forked is None or forked.done():
                return
            if "pid" in message:
                forked.set_result(int(message["pid"]))
            else:
                forked.set_exception(OSError(str(message.get("error", "fork failed"))))
        elif "exited" in message:
            future = self.exit_code(int(message["exited"]))
            if not future.done():
                future.set_result(int(message["code"]))

    def _on_gone(self) -> None:
        """The zygote ended: nothing more will be forked or reported by it."""
        if not self._ready.done():
            self._ready.set_exception(
                ZygoteUnusable(f"the zygote exited before it was ready (see {self.log_path})")
            )
        else:
            # retrieved, so an unusable zygote's exception is never reported as unhandled
            self._ready.exception()
        for forked in self._forks.values():
            if not forked.done():
                forked.set_exception(OSError("the zygote exited before forking"))
        for future in self._exits.values():
            if not future.done():
                future.set_result(None)

    async def close(self) -> None:
        """End the zygote (its children go on); kill it if it does not go at once."""
        self._sender.close()
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        try:
            async with asyncio.timeout(_CLOSE_SECONDS):
                await self.process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        await self._reading
        if self.identity is not None:
            self.identity.release()
