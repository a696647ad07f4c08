"""`FlowContext`: a flow's steps, each recorded by the platform under its ``seq``."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, overload

from conveyor._codec import b64_json, encode_input, to_jsonable
from conveyor._options import Retry
from conveyor.errors import FlowDeterminismError, FlowLimitError, WorkerError

if TYPE_CHECKING:
    from conveyor._task import TaskDefinition
    from conveyor._uds import SocketClient

R = TypeVar("R")
_NO_RETRY = Retry(max_retries=0)
POLL_INTERVAL_S = 1.0
# a new inline step still running after this long is announced, so that the step log shows it
# running; one that ends sooner is recorded by one request, with its result
ANNOUNCE_AFTER_S = 1.0


class FlowPaused(BaseException):
    """The flow reached a sleep that is not due: its attempt ends here (user code must not
    swallow it, hence a BaseException)."""


@dataclass(frozen=True)
class _Record:
    status: str
    result: Any
    failures: int
    task_run_id: str | None


class _Channel:
    """The flow protocol on the instance socket (docs/flows.md)."""

    def __init__(self, client: SocketClient) -> None:
        self.client = client
        # from the platform's answers: how far the step log goes, and the limits on new steps
        self._last_seq: int | None = None
        self._max_steps = 0
        self._max_payload_chars = 0

    def is_new(self, seq: int, value: Any) -> bool:
        """Whether no step is recorded at `seq` (nor anywhere after it), and a new step there
        is within the limits: it can then run first and be recorded with its result."""
        if self._last_seq is None or seq <= self._last_seq or seq > self._max_steps:
            return False
        return len(json.dumps(value)) <= self._max_payload_chars

    async def begin(self, seq: int, kind: str, name: str, value: Any, **sleep: Any) -> _Record:
        body: dict[str, Any] = {"seq": seq, "type": kind, "name": name, "input": value, **sleep}
        answer = await self.client.request("POST", "/flow-step", body)
        if not isinstance(answer, dict) or not isinstance(answer.get("status"), str):
            raise WorkerError(f"/flow-step answered without a status: {answer!r}")
        _raise_refusal(answer)
        last, steps, chars = (answer.get(k) for k in ("last_seq", "max_steps", "max_payload_chars"))
        if isinstance(last, int) and isinstance(steps, int) and isinstance(chars, int):
            self._last_seq = max(last, self._last_seq or 0)
            self._max_steps, self._max_payload_chars = steps, chars
        return _record(answer)

    async def record(self, seq: int, name: str, value: Any, result: Any, started: datetime) -> None:
        """A new inline step and its result, in one request."""
        body = {
            "seq": seq,
            "type": "inline",
            "name": name,
            "input": value,
            "result": result,
            "started_at": started.isoformat(),
        }
        _raise_refusal(await self.post("/flow-step-record", body))

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        return await self.client.request("POST", path, body)

    async def failed(self, seq: int, error: str, started: datetime, final: bool) -> None:
        """One failed try of a step; `final`: no retry is left in this attempt."""
        body = {"seq": seq, "error": error, "started_at": started.isoformat(), "final": final}
        await self.post("/flow-step-failed", body)

    async def done(self, seq: int, value: Any) -> None:
        _raise_refusal(await self.post("/flow-step-done", {"seq": seq, "result": value}))


def _record(answer: dict[str, Any]) -> _Record:
    child = answer.get("task_run_id")
    return _Record(
        answer["status"],
        answer.get("result"),
        int(answer.get("failures") or 0),
        child if isinstance(child, str) else None,
    )


class _Announcement:
    """A new inline step's `/flow-step`, sent only once the step has run `ANNOUNCE_AFTER_S`
    (or has failed a try: failures are recorded on the step)."""

    def __init__(self, channel: _Channel, seq: int, name: str, value: Any) -> None:
        self._begin = functools.partial(channel.begin, seq, "inline", name, value)
        self._sending = False
        self._task = asyncio.ensure_future(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(ANNOUNCE_AFTER_S)
        self._sending = True
        await self._begin()

    async def withdraw(self) -> bool:
        """True: nothing was sent, the step is the caller's to record. False: it was
        announced (a refusal in the answer is raised here)."""
        if self._sending:
            await self._task
            return False
        self.discard()
        return True

    async def now(self) -> None:
        """Announced, if it was not already."""
        if not await self.withdraw():
            return
        self._sending = True
        await self._begin()

    def discard(self) -> None:
        if not self._task.done():
            self._task.cancel()
        elif not self._task.cancelled():
            self._task.exception()  # a refusal the platform recorded: the run fails with it


def _raise_refusal(answer: Any) -> None:
    """A flow rule failed the run: raised in the flow, so that the run fails without retry."""
    if not isinstance(answer, dict) or answer.get("status") != "refused":
        return
    details = answer.get("details")
    details = details if isinstance(details, dict) else {}
    message = str(answer.get("message"))
    if details.get("code") == "flow_determinism_error":
        raise FlowDeterminismError(message, details=details)
    raise FlowLimitError(message, details=details)


class FlowContext:
    """Handed to a flow as its first parameter: its steps run through it.

    Every attempt runs the flow from the top; a step already recorded returns its result
    without running. Steps must be reached in the same order with the same names and inputs
    in every attempt (else `FlowDeterminismError`).

    Example:
        ```python
        @app.flow
        async def order(ctx: FlowContext, order_id: str) -> str:
            total = await ctx.step(price, order_id, retry=Retry(max_retries=3))
            receipt = await ctx.run(charge, order_id, total)
            await ctx.sleep(3600)
            return await ctx.step(notify, receipt)
        ```
    """

    def __init__(
        self,
        client: SocketClient,
        *,
        flow_name: str,
        run_id: str | None,
        attempt: int,
        poll_interval: float = POLL_INTERVAL_S,
    ) -> None:
        """Built by the worker, not by users.

        Args:
            client: The platform's socket.
            flow_name: The running flow's name.
            run_id: Its run's id.
            attempt: The attempt number, 0 for the first.
            poll_interval: Wait between polls of a detached step's run.
        """
        self._channel = _Channel(client)
        self._flow_name = flow_name
        self._run_id = run_id
        self._attempt = attempt
        self._poll_interval = poll_interval
        self._seq = 0
        # detached steps called but whose run is not yet started: a sleep waits for them, so a
        # step started beside a sleep (asyncio.gather) has its run before the attempt ends
        self._starting: set[asyncio.Future[None]] = set()

    def __repr__(self) -> str:
        return f"FlowContext(flow_name={self._flow_name!r}, run_id={self._run_id!r})"

    @property
    def flow_name(self) -> str:
        """The running flow's name."""
        return self._flow_name

    @property
    def run_id(self) -> str | None:
        """This run's id."""
        return self._run_id

    @property
    def attempt(self) -> int:
        """The attempt number, 0 for the first."""
        return self._attempt

    def _next_seq(self) -> int:
        # taken when the step is called, not when it is awaited: steps started together
        # (asyncio.gather) are numbered in the order they were called
        self._seq += 1
        return self._seq

    # two signatures: with one union, a type checker cannot tell R for a coroutine function
    @overload
    def step(
        self,
        fn: Callable[..., Awaitable[R]],
        /,
        *args: Any,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> Awaitable[R]: ...

    @overload
    def step(
        self,
        fn: Callable[..., R],
        /,
        *args: Any,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> Awaitable[R]: ...

    def step(
        self,
        fn: Callable[..., Awaitable[R]] | Callable[..., R],
        /,
        *args: Any,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> Awaitable[R]:
        """An inline step: runs ``fn(*args)`` in this process, once; its result is recorded.

        Args:
            fn: A function or coroutine function; its name names the step.
            *args: Its JSON-serialisable arguments (their hash is checked on replay).
            retry: Tries again in this attempt after a failure; none by default.
            timeout: Seconds one try may take.

        Returns:
            An awaitable of its result as JSON gives it back (as a replay returns it).

        Raises:
            FlowDeterminismError: Another step was recorded at this place.
        """
        return self._inline(self._next_seq(), fn, args, retry or _NO_RETRY, timeout)

    def run(self, task: TaskDefinition[Any, Any] | str, /, *args: Any) -> Awaitable[Any]:
        """A detached step: a task run of its own, awaited without holding a slot.

        Args:
            task: The task object, or the name of a task of the same workflow.
            *args: Its inputs.

        Returns:
            An awaitable of the task run's result.

        Raises:
            TaskRunError: The task run failed.
        """
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._starting.add(started)
        return self._detached(self._next_seq(), task, args, started)

    def sleep(self, seconds: float) -> Awaitable[None]:
        """A durable sleep: the attempt ends and the run shows ``paused``; a new attempt
        resumes here once ``seconds`` have passed since the sleep was first reached.

        Args:
            seconds: How long, from the first attempt that reached it.

        Returns:
            An awaitable that returns once the sleep is over.
        """
        seconds = float(seconds)
        return self._sleep(self._next_seq(), [seconds], {"sleep_seconds": seconds})

    def sleep_until(self, when: datetime) -> Awaitable[None]:
        """A durable sleep until ``when``, as `sleep`.

        Args:
            when: A timezone-aware time; one already past does not sleep.

        Returns:
            An awaitable that returns once ``when`` has passed.

        Raises:
            ValueError: ``when`` has no timezone.
        """
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"sleep_until needs a timezone-aware time, got {when!r}")
        wake_at = when.astimezone(UTC).isoformat()
        return self._sleep(self._next_seq(), [wake_at], {"wake_at": wake_at})

    async def _inline(
        self,
        seq: int,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        retry: Retry,
        timeout: float | None,
    ) -> Any:
        name = getattr(fn, "__name__", None) or type(fn).__name__
        given = _jsonable(name, args)
        announcement = None
        if self._channel.is_new(seq, given):
            # nothing recorded here: run it first, record it with its result in one request
            announcement = _Announcement(self._channel, seq, name, given)
        else:
            record = await self._channel.begin(seq, "inline", name, given)
            if record.status == "succeeded":
                return record.result
        try:
            return await self._run_inline(seq, fn, args, retry, timeout, name, given, announcement)
        finally:
            if announcement is not None:
                announcement.discard()

    async def _run_inline(
        self,
        seq: int,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        retry: Retry,
        timeout: float | None,
        name: str,
        given: Any,
        announcement: _Announcement | None,
    ) -> Any:
        tries = 0
        while True:
            started = datetime.now(UTC)
            try:
                result = await _call(fn, args, timeout)
                value = json.loads(json.dumps(result, default=to_jsonable))
            except Exception as exc:
                if announcement is not None:  # its failed tries are recorded on the step
                    await announcement.now()
                    announcement = None
                final = tries >= retry.max_retries
                await self._channel.failed(seq, f"{type(exc).__qualname__}: {exc}", started, final)
                if final:
                    raise
                tries += 1
                await asyncio.sleep(retry.delay_ms(tries) / 1000)
                continue
            if announcement is not None and await announcement.withdraw():
                await self._channel.record(seq, name, given, value, started)
            else:
                await self._channel.done(seq, value)
            return value

    async def _detached(
        self,
        seq: int,
        task: TaskDefinition[Any, Any] | str,
        args: tuple[Any, ...],
        started: asyncio.Future[None],
    ) -> Any:
        try:
            return await self._run_detached(seq, task, args, started)
        finally:
            if not started.done():
                started.set_result(None)
            self._starting.discard(started)

    async def _run_detached(
        self,
        seq: int,
        task: TaskDefinition[Any, Any] | str,
        args: tuple[Any, ...],
        started: asyncio.Future[None],
    ) -> Any:
        from conveyor._worker import child_outcome  # the worker module imports this one

        name = task if isinstance(task, str) else task.name
        input_json = encode_input(name, args, {})
        record = await self._channel.begin(seq, "detached", name, json.loads(input_json))
        if record.status == "succeeded":
            return record.result
        # a child that failed is not awaited again: a new attempt of the step starts another
        run_id = record.task_run_id if record.status == "running" else None
        if run_id is None:
            answer = await self._channel.post(
                "/run-subtask",
                {
                    "task_name": name,
                    "input": b64_json(input_json),
                    # one child per try of the step, whichever attempt asks: a replay finds it
                    "idempotency_key": f"flow-step-{seq}-{record.failures}",
                    "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
                },
            )
            run_id = answer.get("task_run_id") if isinstance(answer, dict) else None
            if not isinstance(run_id, str) or not run_id:
                raise WorkerError(f"/run-subtask answered without a task_run_id: {answer!r}")
            await self._channel.post("/flow-step-child", {"seq": seq, "task_run_id": run_id})
        started.set_result(None)
        while True:
            answer = await self._channel.post(
                "/get-subtask-result", {"task_run_id": run_id, "hold": True}
            )
            if not isinstance(answer, dict) or not isinstance(answer.get("still_running"), bool):
                raise WorkerError(f"/get-subtask-result answered without still_running: {answer!r}")
            if not answer["still_running"]:
                break
            await asyncio.sleep(self._poll_interval)
        try:
            result = child_outcome(run_id, answer)
        except Exception as exc:
            await self._channel.failed(seq, str(exc), datetime.now(UTC), final=True)
            raise
        await self._channel.done(seq, result)
        return result

    async def _sleep(self, seq: int, value: list[Any], until: dict[str, Any]) -> None:
        record = await self._channel.begin(seq, "sleep", "sleep", value, **until)
        if record.status == "succeeded":
            return
        if self._starting:
            await asyncio.wait(list(self._starting))
        await self._channel.post("/flow-pause", {"seq": seq})
        raise FlowPaused(seq)


def _jsonable(name: str, args: tuple[Any, ...]) -> Any:
    return json.loads(encode_input(name, args, {}))


async def _call(fn: Callable[..., Any], args: tuple[Any, ...], timeout: float | None) -> Any:
    if inspect.iscoroutinefunction(fn):
        return await asyncio.wait_for(fn(*args), timeout)
    return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout)
