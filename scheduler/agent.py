"""The platform side of the instance protocol, one unix socket per attempt (RENDER-PROTOCOL.md)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import os
import shutil
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.domain import AttemptOutcome, RunInfo, RunStatus, TaskSpec
from core.errors import ServiceError
from core.settings import Settings
from scheduler.flows.protocol import FlowProtocol
from scheduler.instance_sockets import sockets_root
from scheduler.payloads import check_input, dumps
from scheduler.registration_payload import (
    InvalidRegistration,
    parse_registration,
    worker_language,
)
from scheduler.runs.admission import Admitted
from scheduler.runs.reads import RunReads
from scheduler.runs.transitions import Transitions
from scheduler.uds_http import Request, Response, UnixServer, serve_unix

logger = logging.getLogger(__name__)

# relayed instances remembered for their held-request counts
_RELAYED_CACHE = 10_000
# a base64 body is 4/3 of its payload; leave room for the envelope
_BODY_FACTOR = 1.4


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64_json(value: Any) -> tuple[str, Any]:
    """(JSON text, value) from a b64 field; ValueError when it is not base64 of JSON."""
    if not isinstance(value, str):
        raise ValueError("expected a base64 string")
    try:
        text = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"not base64 of UTF-8 text: {exc}") from None
    return text, json.loads(text)


def _input_answer(
    task_name: str,
    input_text: str,
    run_id: str,
    root_id: str,
    parent_id: str | None,
    attempt: int,
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "task_name": task_name,
        "input": _b64(input_text),
        "task_run_id": run_id,
        "root_task_run_id": root_id,
        "attempt": attempt,
    }
    if parent_id is not None:
        answer["parent_task_run_id"] = parent_id
    return answer


def storable(text: str) -> str:
    """Text a task sent, as every database stores and reads it back: a lone surrogate or a NUL
    (which PostgreSQL refuses) is kept as its escape."""
    if text.isascii() and "\x00" not in text:
        return text
    escaped = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return escaped.replace("\x00", "\\x00")


async def _from_its_instance(instance: Instance, request: Request) -> bool:
    """Whether the request comes from a process of the instance's session (always, where the
    executor names no session or the kernel no peer, and from this process itself)."""
    if request.peer_pid is None or request.peer_pid == os.getpid():
        return True
    if request.peer is not None and request.peer.checked_by is instance:
        return True  # an earlier request on this connection passed: the same process sent this
    if instance.admitted is not None and not instance.known.is_set():
        await instance.known.wait()  # its session is known once the executor started it
    if instance.session is None:
        return True
    if session_of(request.peer_pid) != instance.session:
        return False
    if request.peer is not None:
        request.peer.checked_by = instance
    return True


def session_of(pid: int) -> int | None:
    """The session of process `pid`, as this process's PID namespace names it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[3])


def _clear_socket(socket_path: Path) -> None:
    """The folder of a socket to serve again, without the dead control plane's socket file."""
    socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)


def _child_answer(child: RunInfo) -> dict[str, Any]:
    """What `/get-subtask-result` answers for an ended child."""
    if child.status is RunStatus.SUCCEEDED:
        return {"still_running": False, "complete": {"output": _b64(dumps(child.results or []))}}
    if child.status is RunStatus.CANCELED:
        details = f"task run {child.id} ({child.task_name}) was canceled"
    else:
        details = child.error or f"task run {child.id} ({child.task_name}) failed"
    error: dict[str, Any] = {"details": details}
    if child.stack_trace:
        error["stack_trace"] = child.stack_trace
    return {"still_running": False, "error": error}


def _bad(message: str) -> Response:
    return Response.json(400, {"message": message})


@dataclass
class Registration:
    """What a register-mode instance reported."""

    done: asyncio.Future[list[TaskSpec]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass
class Instance:
    attempt_id: str | None
    run_id: str | None
    directory: Path | None  # None: a relay elsewhere serves its socket (register_remote)
    socket_path: Path | None
    registration: Registration | None
    server: UnixServer | None = None
    held: int = 0
    # what admission read: `/input` is answered from it (None: read from the database)
    admitted: Admitted | None = None
    canceled: bool = False  # its run was cancelled: its input is refused
    # set once the executor has recorded where the instance runs: no task body starts before a
    # control plane that dies could find its instance again
    known: asyncio.Event = field(default_factory=asyncio.Event)
    # the session of the instance's processes (a local executor's): a process of another
    # session that reaches this socket is refused
    session: int | None = None


class Agent:
    """Opens and closes instance sockets and answers what the workers ask."""

    def __init__(self, settings: Settings, transitions: Transitions, reads: RunReads) -> None:
        self._settings = settings
        self._transitions = transitions
        self._reads = reads
        # told when an attempt's worker reported its result itself (it is about to exit)
        self.on_result: Callable[[str], None] = lambda _attempt_id: None
        self._instances: dict[str, Instance] = {}
        # attempts other processes started, answered here for their relays (oldest dropped first)
        self._relayed: dict[str, Instance] = {}
        self._flows = FlowProtocol(
            transitions.writer,
            settings.limits,
            transitions.payloads,
            lambda key: self.on_result(key),
        )
        self._routes: dict[tuple[str, str], Callable[[Instance, Request], Awaitable[Response]]] = {
            ("GET", "/input"): self._input,
            ("POST", "/callback"): self._callback,
            ("POST", "/run-subtask"): self._run_subtask,
            ("POST", "/get-subtask-result"): self._get_subtask_result,
            ("POST", "/register-tasks"): self._register_tasks,
            # a flow's attempt ends when it pauses: told like a result (scheduler/flows)
            **self._flows.routes(),
        }

    async def open(
        self,
        key: str,
        *,
        attempt_id: str | None,
        run_id: str | None,
        registration: Registration | None,
        admitted: Admitted | None = None,
    ) -> Path:
        """A socket for instance `key`, in a 0700 folder named after it (see `socket_path`)."""
        socket_path = self.socket_path(key)
        directory = socket_path.parent
        _clear_socket(socket_path)  # a mkdir and an unlink: cheaper than a hop to a thread
        instance = Instance(
            attempt_id, run_id, directory, socket_path, registration, admitted=admitted
        )
        if admitted is None:
            instance.known.set()  # registration: nothing to find again

        async def handle(request: Request) -> Response:
            return await self._dispatch(instance, request)

        max_body = int(self._settings.limits.max_output_bytes * _BODY_FACTOR)
        instance.server = await serve_unix(socket_path, handle, max_body=max_body)
        self._instances[key] = instance
        return socket_path

    @staticmethod
    def socket_path(key: str) -> Path:
        """Where instance `key` (an attempt or a version's registration) finds its platform.

        Named after the key, so a control plane that starts after another died knows where the
        instances it left call home. Short enough for the 108-byte limit.
        """
        return sockets_root() / key / "s"

    def started(self, key: str, session: int | None = None) -> None:
        """The executor recorded the instance of `key`: it may have its input. With a
        `session`, only processes of that session are answered on its socket."""
        instance = self._instances.get(key)
        if instance is not None:
            instance.session = session
            instance.known.set()

    async def reopen(
        self, key: str, socket_path: Path, admitted: Admitted, session: int | None = None
    ) -> None:
        """Serve an instance's socket again, at the path it was given: an instance a previous
        control plane started (and that outlived it) finds its platform where it left it."""
        directory = socket_path.parent
        await asyncio.to_thread(_clear_socket, socket_path)
        instance = Instance(
            admitted.attempt_id, admitted.run_id, directory, socket_path, None, admitted=admitted
        )
        instance.session = session
        instance.known.set()

        async def handle(request: Request) -> Response:
            return await self._dispatch(instance, request)

        max_body = int(self._settings.limits.max_output_bytes * _BODY_FACTOR)
        instance.server = await serve_unix(socket_path, handle, max_body=max_body)
        self._instances[key] = instance

    def register_remote(
        self,
        key: str,
        *,
        attempt_id: str | None,
        run_id: str | None,
        registration: Registration | None,
    ) -> None:
        """An instance whose socket a relay on another machine serves (`conveyor agent`)."""
        if key not in self._instances:
            self._instances[key] = Instance(attempt_id, run_id, None, None, registration)

    async def handle(self, key: str, request: Request) -> Response | None:
        """Answer a relayed request for instance `key`; None when no such attempt is live.

        The API process that receives a relay is usually not the scheduler that started the
        attempt: every run-mode request is answered from the database, so any control-plane
        process can serve it. Registration waits on a future in the registering process, so
        register-mode instances must be open here.
        """
        instance = self._instances.get(key) or self._relayed.get(key)
        if instance is None:
            run_id = await self._reads.live_attempt_run(key)
            if run_id is None:
                return None
            instance = Instance(key, run_id, None, None, None)
            if len(self._relayed) >= _RELAYED_CACHE:
                self._relayed.pop(next(iter(self._relayed)))
            self._relayed[key] = instance
        return await self._dispatch(instance, request)

    async def close(self, key: str, *, keep_folder: bool = False) -> None:
        """Stop serving instance `key`; its folder goes too unless `keep_folder` (an instance
        that runs on: a sandboxed one sees that very folder, not its path, so the next control
        plane must serve its socket again in it)."""
        instance = self._instances.pop(key, None)
        if instance is None:
            return
        if instance.server is not None:
            instance.server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await instance.server.wait_closed()
        if instance.directory is not None and not keep_folder:
            shutil.rmtree(instance.directory, ignore_errors=True)

    def cancel(self, key: str) -> None:
        """The instance's run was cancelled: if it has not asked for its input, it gets none."""
        instance = self._instances.get(key)
        if instance is not None:
            instance.canceled = True

    async def close_all(self, *, running: Iterable[str] = ()) -> None:
        """Stop serving every instance; the folders of those `running` on are kept."""
        kept = set(running)
        for key in list(self._instances):
            await self.close(key, keep_folder=key in kept)
        await self._flows.close()

    async def _dispatch(self, instance: Instance, request: Request) -> Response:
        route = self._routes.get((request.method, request.path))
        if route is None:
            return Response.json(404, {"message": f"no route {request.method} {request.path}"})
        if not await _from_its_instance(instance, request):
            logger.warning(
                "attempt %s: refused %s %s from process %s, not of its instance",
                instance.attempt_id,
                request.method,
                request.path,
                request.peer_pid,
            )
            return Response.json(403, {"message": "this socket belongs to another instance"})
        try:
            return await route(instance, request)
        except ServiceError as exc:
            return Response.json(exc.http_status, {"message": exc.message, "code": exc.code})
        except json.JSONDecodeError as exc:
            return _bad(f"body is not JSON: {exc}")

    # -- run mode -------------------------------------------------------------------------------

    async def _input(self, instance: Instance, request: Request) -> Response:
        if instance.attempt_id is None or instance.run_id is None:
            return Response.json(409, {"message": "this instance registers tasks; it runs none"})
        admitted = instance.admitted
        if admitted is None:
            return await self._relayed_input(instance.attempt_id)
        await instance.known.wait()
        if instance.canceled:
            return Response.json(409, {"message": f"task run {admitted.run_id} is canceled"})
        text = admitted.input_json
        if text is None and admitted.input_key is not None:
            text = dumps(await self._transitions.payloads.load(None, admitted.input_key))
        answer = _input_answer(
            admitted.task_name,
            text or "[]",
            admitted.run_id,
            admitted.root_id,
            admitted.parent_id,
            admitted.attempt,
        )
        return Response.json(200, answer)

    async def _relayed_input(self, attempt_id: str) -> Response:
        """An instance another process started (a Nomad relay): its input from the database."""
        row = await self._reads.attempt_row(attempt_id)
        if row.run_status != RunStatus.RUNNING.value:
            return Response.json(409, {"message": f"task run {row.run_id} is {row.run_status}"})
        await self._transitions.mark_running(attempt_id)
        value = await self._transitions.payloads.load(row.input_json, row.input_key)
        text = dumps(value if value is not None else [])
        answer = _input_answer(
            row.task_name, text, row.run_id, row.root_id, row.parent_id, row.number
        )
        return Response.json(200, answer)

    async def _callback(self, instance: Instance, request: Request) -> Response:
        if instance.attempt_id is None:
            return Response.json(409, {"message": "this instance registers tasks; it runs none"})
        body = request.json()
        if not isinstance(body, dict):
            return _bad("callback must be an object with 'complete' or 'error'")
        if isinstance(body.get("complete"), dict):
            if await self._complete(instance.attempt_id, instance.run_id, body["complete"]):
                self.on_result(instance.attempt_id)
        elif isinstance(body.get("error"), dict):
            error = body["error"]
            details = error.get("details")
            stack = error.get("stack_trace")
            traced = isinstance(stack, str) and bool(stack)
            recorded = await self._transitions.record_outcome(
                instance.attempt_id,
                AttemptOutcome.ERROR,
                run_id=instance.run_id,
                error=storable(str(details)) if details is not None else "the task failed",
                stack_trace=storable(stack) if traced else None,
                # Conveyor's SDK says when another attempt cannot help (input that does not fit)
                retryable=error.get("retryable") is not False,
                # the official SDKs print the trace instead: the run waits for it in the log
                wait_for_trace=not traced,
            )
            if recorded and traced:
                self.on_result(instance.attempt_id)
        else:
            return _bad("callback must carry 'complete' or 'error'")
        return Response(200)

    async def _complete(
        self, attempt_id: str, run_id: str | None, complete: dict[str, Any]
    ) -> bool:
        """Record the result (or why it is unusable); True if it was the attempt's first."""
        raw = complete.get("output", "")
        limit = self._settings.limits.max_output_bytes
        record = self._transitions.record_outcome
        try:
            text, value = _unb64_json(raw) if raw else ("[]", [])
        except ValueError as exc:
            error = f"the task's output is not JSON: {exc}"
            return await record(attempt_id, AttemptOutcome.ERROR, run_id=run_id, error=error)
        if len(text.encode()) > limit:
            error = f"the task's output is {len(text.encode())} bytes; the limit is {limit}"
            return await record(attempt_id, AttemptOutcome.ERROR, run_id=run_id, error=error)
        if not isinstance(value, list):
            text = dumps([value])
        return await record(attempt_id, AttemptOutcome.OK, run_id=run_id, output=text)

    async def _run_subtask(self, instance: Instance, request: Request) -> Response:
        if instance.attempt_id is None:
            return Response.json(409, {"message": "this instance registers tasks; it runs none"})
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("task_name"), str):
            return _bad("expected {task_name, input}")
        raw_input = body.get("input") or ""
        try:
            _, value = _unb64_json(raw_input) if raw_input else ("[]", [])
        except ValueError as exc:
            return _bad(f"input: {exc}")
        key = body.get("idempotency_key")
        text = check_input(value, max_bytes=self._settings.limits.max_input_bytes)
        child_id = await self._transitions.create_child(
            instance.attempt_id, body["task_name"], text, key if isinstance(key, str) else None
        )
        return Response.json(200, {"task_run_id": child_id})

    async def _get_subtask_result(self, instance: Instance, request: Request) -> Response:
        if instance.attempt_id is None or instance.run_id is None:
            return Response.json(409, {"message": "this instance registers tasks; it runs none"})
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("task_run_id"), str):
            return _bad("expected {task_run_id}")
        child_id = body["task_run_id"]
        limits = self._settings.limits
        # Render's SDK spends a thread of a small pool on each request, so only a few are held;
        # a client that says it waits on its event loop gets one held per child it may have
        most = limits.held_requests_per_instance
        if body.get("hold") is True:
            most = max(most, limits.max_children_per_run)
        hold = instance.held < most
        instance.held += hold
        try:
            return await self._poll_child(
                instance.attempt_id,
                instance.run_id,
                child_id,
                limits.subtask_hold_seconds if hold else 0.0,
            )
        finally:
            instance.held -= hold

    async def _poll_child(
        self, attempt_id: str, run_id: str, child_id: str, hold_seconds: float
    ) -> Response:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + hold_seconds
        bus = self._reads.bus
        awaited = False
        while True:
            with bus.watch_run(child_id) as child_changed, bus.watch_run(run_id) as parent_changed:
                child = await self._reads.child_state(attempt_id, run_id, child_id)
                if child.deliverable is not None:
                    return Response.json(200, _child_answer(child.deliverable))
                if not child.status.terminal and not awaited:
                    # once is enough: while an awaited child is unfinished, no resume is granted,
                    # so the attempt stays waiting until this child ends
                    await self._transitions.await_child(attempt_id, child_id)
                    awaited = True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return Response.json(200, {"still_running": True})
                waiters = [
                    asyncio.ensure_future(child_changed.wait()),
                    asyncio.ensure_future(parent_changed.wait()),
                ]
                try:
                    await asyncio.wait(
                        waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    for waiter in waiters:
                        waiter.cancel()

    # -- register mode --------------------------------------------------------------------------

    async def _register_tasks(self, instance: Instance, request: Request) -> Response:
        registration = instance.registration
        if registration is None:
            return Response.json(409, {"message": "this instance runs a task; it registers none"})
        body = request.json()
        if registration.done.done():
            return Response(200)
        try:
            language = worker_language(request.user_agent)
            registration.done.set_result(
                parse_registration(body, self._settings, language=language)
            )
        except InvalidRegistration as exc:
            registration.done.set_exception(exc)
        return Response(200)
