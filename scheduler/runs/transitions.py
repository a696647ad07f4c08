"""Every change of a run's or an attempt's state, each a compare-and-set, in one place.

Each public method is one transaction: a plain function of a SQLAlchemy Core connection, run
whole by the database (`core.db.database`), its changes published once it commits (`writes`).
A transaction that frees a slot — an attempt's result, a parent starting to wait, a new run
while slots are free — runs an admission pass before it commits when this process has a
scheduler to start what it admits: a slot is handed over without a round trip through the
scheduler's loop.

Locks are taken in one order everywhere — a run, then its attempts, then its children, then the
workspace (admission) — so concurrent writers on PostgreSQL wait for each other instead of
deadlocking. On SQLite there is one writer at a time.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import BindParameter, Connection, String, bindparam, case, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.blobs.base import run_input_key, run_output_key
from core.domain import (
    AttemptOutcome,
    AttemptState,
    RetryPolicy,
    RunInfo,
    RunStatus,
    TaskOptions,
)
from core.errors import Conflict, InvalidRequest, NotFound
from core.ids import new_id
from core.settings import Settings
from scheduler.payloads import PayloadStore
from scheduler.runs import admission, admission_rules, metering
from scheduler.runs.admission import Admitted, TaskOptionsCache
from scheduler.runs.outcomes import ReportedOutcome
from scheduler.runs.reads import resolve_task
from scheduler.runs.retries import retry_delay
from scheduler.runs.rows import (
    LIVE_STATES,
    NON_TERMINAL,
    AnyRow,
    attempt_events,
    attempts,
    changed,
    runs,
    task_info,
    tasks,
    workflows,
    workspaces,
)
from scheduler.runs.values import (
    attempt_values,
    child_run_values,
    error_text,
    exit_outcome,
    new_run_info,
    root_run_values,
    run_input_problem,
    utcnow,
)
from scheduler.runs.writes import Changes, Writer
from scheduler.schedules import next_time, schedules

_SCHEDULES_PER_PASS = 100  # the rest fire on the next pass, moments later

# Statements are built once: building a statement costs more than running it on SQLite. Bound
# names start with `b_` where a statement also sets columns from its parameters.
_RUN: BindParameter[str] = bindparam("b_run", type_=String)
_ATTEMPT: BindParameter[str] = bindparam("b_attempt", type_=String)
_INSERT_RUN = insert(runs)
_INSERT_ATTEMPT = insert(attempts)
_INSERT_EVENT = insert(attempt_events)
# FOR NO KEY UPDATE, as every row lock here (admission.py says why)
_LOCK_RUN = select(runs).where(runs.c.id == _RUN).with_for_update(key_share=True)
_LOCK_PARENT = (
    select(runs.c.status, runs.c.child_count)
    .where(runs.c.id == _RUN)
    .with_for_update(key_share=True)
)
_COUNT_CHILD = update(runs).where(runs.c.id == _RUN).values(child_count=runs.c.child_count + 1)
_UPDATE_RUN = update(runs).where(runs.c.id == _RUN)
_START_RUN = (
    update(runs)
    .where(runs.c.id == _RUN)
    .values(
        status=RunStatus.RUNNING.value,
        attempt_count=bindparam("b_count"),
        started_at=bindparam("b_started"),
        not_before=None,
    )
)
_ATTEMPT_ROW = select(attempts).where(attempts.c.id == _ATTEMPT)
_UPDATE_ATTEMPT = update(attempts).where(attempts.c.id == _ATTEMPT)
_METER = (
    update(attempts)
    .where(attempts.c.id == _ATTEMPT, attempts.c.compute_seconds.is_(None))
    .values(
        exit_code=bindparam("exit_code"),
        compute_seconds=bindparam("compute_seconds"),
        cost_usd=bindparam("cost_usd"),
    )
)
_RECORD_OUTCOME = (
    update(attempts)
    .where(attempts.c.id == _ATTEMPT, attempts.c.outcome.is_(None))
    .returning(attempts.c.number, attempts.c.workspace_id)
)
_STARTED = (
    update(attempts)
    .where(attempts.c.id == _ATTEMPT)
    .values(
        handle=bindparam("b_handle"),
        state=case(
            (attempts.c.state == AttemptState.STARTING.value, AttemptState.RUNNING.value),
            else_=attempts.c.state,
        ),
    )
)
_RESUME = (
    update(attempts)
    .where(attempts.c.id.in_(bindparam("b_ids", expanding=True)))
    .values(waiting=False)
)
_WAIT = (
    update(attempts)
    .where(
        attempts.c.id == _ATTEMPT,
        attempts.c.waiting.is_(False),
        attempts.c.outcome.is_(None),
        attempts.c.state.in_(LIVE_STATES),
    )
    .values(waiting=True)
    .returning(attempts.c.workspace_id)
)
_AWAITED = update(runs).where(runs.c.id == _RUN, runs.c.awaited.is_(False)).values(awaited=True)
_CHILD_BY_KEY = select(runs.c.id).where(
    runs.c.idempotency_scope == bindparam("scope"), runs.c.idempotency_key == bindparam("key")
)
_LIVE_CHILDREN = (
    select(runs)
    .where(runs.c.parent_id == _RUN, runs.c.status.in_(NON_TERMINAL))
    .order_by(runs.c.id)
)
_LIVE_CHILDREN_OF_ATTEMPT = _LIVE_CHILDREN.where(runs.c.parent_attempt == bindparam("number"))
_CANCEL_RUN = (
    update(runs)
    .where(runs.c.id == _RUN)
    .values(status=RunStatus.CANCELED.value, completed_at=bindparam("b_now"))
)
_CANCEL_ATTEMPTS = (
    update(attempts)
    .where(
        attempts.c.run_id == _RUN,
        attempts.c.state != AttemptState.ENDED.value,
        attempts.c.outcome.is_(None),
    )
    .values(
        outcome=AttemptOutcome.CANCELED.value,
        error="canceled",
        waiting=False,
        ended_at=bindparam("b_now"),
    )
)


class Transitions:
    """The compare-and-sets on runs and attempts."""

    def __init__(self, settings: Settings, writer: Writer, payloads: PayloadStore) -> None:
        self.settings = settings
        self.writer = writer
        self.payloads = payloads
        self.options = TaskOptionsCache()

    # -- workspaces -------------------------------------------------------------------------

    async def ensure_workspace(self, workspace_id: str, name: str, limit: int) -> int:
        """Create the workspace with `limit` if it has none; its stored limit either way.

        A process's setting only seeds a new workspace: the limit is data, changed with
        `set_limit`, never by whichever process started last.
        """

        def ensure(conn: Connection, _: Changes) -> int:
            stored = conn.scalar(
                select(workspaces.c.max_concurrency).where(workspaces.c.id == workspace_id)
            )
            if stored is not None:
                return int(stored)
            conn.execute(
                insert(workspaces).values(
                    id=workspace_id, name=name, max_concurrency=limit, created_at=utcnow()
                )
            )
            return limit

        return await self.writer.run(ensure)

    async def set_limit(self, workspace_id: str, limit: int) -> None:
        """The workspace's concurrency limit; more room is used at once."""

        def set_limit(conn: Connection, changes: Changes) -> None:
            updated = conn.execute(
                update(workspaces)
                .where(workspaces.c.id == workspace_id)
                .values(max_concurrency=limit)
            )
            if updated.rowcount == 0:
                raise NotFound(f"workspace {workspace_id} not found")
            self._admit(conn, changes, workspace_id)

        await self.writer.run(set_limit)

    # -- creation ---------------------------------------------------------------------------

    async def create_root(
        self,
        workspace_id: str,
        task_ref: str,
        input: Any,
        input_text: str,
        idempotency: tuple[str, str] | None,
        *,
        check_input: bool = True,
    ) -> RunInfo | None:
        """A new root run of `wf/task[:version]`, admitted at once when a slot is free.

        The task is resolved and the input checked against the parameters its SDK registered
        (unless `check_input` is false: then its worker alone checks, as for a child's input)
        in the same transaction. None if the idempotency key was taken meanwhile.
        """
        run_id = new_id("trn")
        inline, key = await self.payloads.save(run_input_key(run_id), input_text)

        def create(conn: Connection, changes: Changes) -> tuple[dict[str, Any], Admitted | None]:
            task = resolve_task(workspace_id, task_ref, conn)
            if check_input and (problem := run_input_problem(task, input)):
                raise InvalidRequest(f"task {task.slug!r} cannot take this input: {problem}")
            values = root_run_values(run_id, workspace_id, task, inline, key, idempotency, utcnow())
            conn.execute(_INSERT_RUN, values)
            changes.add(changed(SimpleNamespace(**values), RunStatus.PENDING.value))
            self._admit(conn, changes, workspace_id)
            return values, next((a for a in changes.admitted if a.run_id == run_id), None)

        try:
            # its one contended lock is the workspace's row: it may share a transaction
            values, admitted = await self.writer.run(create, group=f"roots of {workspace_id}")
        except IntegrityError:
            if idempotency is None:
                raise
            return None  # the same key, in a concurrent request: the caller reads that run
        return new_run_info(values, admitted, input)

    async def create_child(
        self, attempt_id: str, task_name: str, input_text: str, idempotency_key: str | None
    ) -> str:
        """A child of the attempt's run; the same idempotency key gives back the same child.

        The parent and the task are read in the creating transaction itself. That read comes
        first as well, as a check, only before looking up an idempotency key (in the parent's
        scope) or saving an input too big to keep inline (no blob for a child that cannot be).
        """
        limits = self.settings.limits
        if idempotency_key or not self.payloads.fits_inline(input_text):
            parent, _ = await self.writer.db.read(
                functools.partial(_child_target, attempt_id, task_name)
            )
            _check_depth(parent, limits.max_tree_depth)
            if idempotency_key:
                params = {"scope": parent.run_id, "key": idempotency_key}
                existing = await self.writer.db.read(
                    lambda conn: conn.scalar(_CHILD_BY_KEY, params)
                )
                if existing is not None:
                    return str(existing)
        run_id = new_id("trn")
        inline, key = await self.payloads.save(run_input_key(run_id), input_text)

        def create(conn: Connection, changes: Changes) -> None:
            parent, task = _child_target(attempt_id, task_name, conn)
            _check_depth(parent, limits.max_tree_depth)
            status, children = conn.execute(_LOCK_PARENT, {"b_run": parent.run_id}).one()
            if status != RunStatus.RUNNING.value:
                raise Conflict(f"task run {parent.run_id} is {status}: it cannot start children")
            if children >= limits.max_children_per_run:
                raise Conflict(
                    f"task run {parent.run_id} has started {children} children: the limit is "
                    f"{limits.max_children_per_run} (CONVEYOR_LIMITS__MAX_CHILDREN_PER_RUN)"
                )
            values = child_run_values(run_id, parent, task, inline, key, idempotency_key, utcnow())
            conn.execute(_INSERT_RUN, values)
            conn.execute(_COUNT_CHILD, {"b_run": parent.run_id})
            changes.add(changed(SimpleNamespace(**values), RunStatus.PENDING.value))
            self._admit(conn, changes, parent.workspace_id)

        # its contended locks are the parent's row, then the workspace's: a fan-out's creates
        # (one attempt's, so one run's) may share a transaction
        await self.writer.run(create, group=f"children of {attempt_id}")
        return run_id

    async def fire_schedules(self, now: datetime) -> int:
        """A root run for each schedule whose time has come; the number of schedules due."""
        return await self.writer.run(functools.partial(self._fire_schedules, now=now))

    def _fire_schedules(self, conn: Connection, changes: Changes, *, now: datetime) -> int:
        due = conn.execute(
            select(schedules)
            .where(schedules.c.next_fire_at <= now)
            .order_by(schedules.c.next_fire_at)
            .limit(_SCHEDULES_PER_PASS)
            .with_for_update(skip_locked=True, key_share=True)
        ).all()
        fired_in: set[str] = set()
        for schedule in due:
            values: dict[str, Any] = {"next_fire_at": next_time(schedule.cron, now)}
            run_id = _fire(conn, changes, schedule, now)
            if run_id is not None:
                values |= {"last_fired_at": now, "last_run_id": run_id}
                fired_in.add(schedule.workspace_id)
            conn.execute(update(schedules).where(schedules.c.id == schedule.id).values(values))
        for workspace_id in sorted(fired_in):
            self._admit(conn, changes, workspace_id)
        return len(due)

    # -- admission --------------------------------------------------------------------------

    async def admit(self, workspace_id: str, scheduler_id: str) -> list[Admitted]:
        """One admission pass (the scheduler's loop): resumes first, then pending runs."""
        return await self.writer.run(
            lambda conn, changes: self._admission_pass(conn, changes, workspace_id, scheduler_id)
        )

    def _admit(self, conn: Connection, changes: Changes, workspace_id: str) -> None:
        """Admit into freed slots now when this process starts instances; else wake a loop."""
        admitter = self.writer.admitter
        if admitter is None:
            changes.wake = True  # another process's scheduler hears of it by NOTIFY
            return
        admitted = self._admission_pass(
            conn, changes, workspace_id, admitter.scheduler_id, share=admitter.schedulers()
        )
        changes.admitted.extend(admitted)

    def _admission_pass(
        self,
        conn: Connection,
        changes: Changes,
        workspace_id: str,
        scheduler_id: str,
        *,
        share: int = 1,
    ) -> list[Admitted]:
        """Resumes first, then pending runs; with `share` schedulers alive, this one's part."""
        now = utcnow()
        slots = admission.slots(conn, workspace_id)
        free = slots.free
        if free > 0 and slots.waiting:
            free -= self._grant_resumes(conn, changes, workspace_id, free, now)
        if share > 1 and free > 0:
            mine = admission.held_by(conn, workspace_id, scheduler_id)
            # the rest is for the others, which hear of the change (NOTIFY) and take it
            free = admission_rules.scheduler_share(free, slots.limit, share, mine)
        if free <= 0:
            return []
        chosen, options = self._choose(conn, workspace_id, now, free, free)
        if len(chosen) < free and len(options) and any(o.concurrency for o in options.values()):
            # runs of tasks at their own limit were passed over: look further down the queue
            chosen, options = self._choose(
                conn, workspace_id, now, free, free + admission.LOOKAHEAD
            )
        if not chosen:
            return []
        started = [
            attempt_values(self.settings, run, options[run.task_id], scheduler_id, now)
            for run in chosen
        ]
        conn.execute(_INSERT_ATTEMPT, [values for values, _ in started])
        conn.execute(
            _START_RUN,
            [
                {
                    "b_run": run.id,
                    "b_count": run.attempt_count + 1,
                    "b_started": run.started_at or now,
                }
                for run in chosen
            ],
        )
        _events(conn, workspace_id, "started", [values["id"] for values, _ in started], now)
        for run in chosen:
            changes.add(changed(run, RunStatus.RUNNING.value))
        return [item for _, item in started]

    def _choose(
        self, conn: Connection, workspace_id: str, now: datetime, free: int, look: int
    ) -> tuple[list[AnyRow], dict[str, TaskOptions]]:
        """Up to `free` of the next `look` pending runs, under each task's own limit."""
        pending = admission.admissible(conn, workspace_id, now, look)
        if not pending:
            return [], {}
        options = self.options.of(conn, {run.task_id for run in pending})
        task_room = admission.task_room(conn, workspace_id, options)
        return admission_rules.choose(pending, task_room, free), options

    def _grant_resumes(
        self, conn: Connection, changes: Changes, workspace_id: str, free: int, now: datetime
    ) -> int:
        rows = admission.resumable(conn, workspace_id, free)
        if not rows:
            return 0
        ids = [row.id for row in rows]
        conn.execute(_RESUME, {"b_ids": ids})
        _events(conn, workspace_id, "resumed", ids, now)
        for row in rows:
            run = SimpleNamespace(id=row.run_id, root_id=row.root_id, parent_id=row.parent_id)
            changes.add(changed(run, RunStatus.RUNNING.value))
        return len(rows)

    # -- progress ---------------------------------------------------------------------------

    def started(self, attempt_id: str, handle: dict[str, Any]) -> None:
        """The instance exists: its handle (to find it after a restart) and that it runs,
        written with the next transaction (a local instance is found without it too)."""
        self.writer.defer(_STARTED, {"b_attempt": attempt_id, "b_handle": json.dumps(handle)})

    def meter(self, admitted: Admitted, exit_code: int | None) -> None:
        """An instance that reported its result (its slot freed then) is gone: its compute
        seconds and cost, written with the next transaction (nothing waits on them)."""
        metered = metering.meter(admitted.started_at, utcnow(), self.settings.plan(admitted.plan))
        self.writer.defer(
            _METER,
            {
                "b_attempt": admitted.attempt_id,
                "exit_code": exit_code,
                "compute_seconds": metered.compute_seconds,
                "cost_usd": metered.cost_usd,
            },
        )

    async def mark_running(self, attempt_id: str) -> None:
        """A relayed instance asked for its input (local instances are marked by `started`)."""
        statement = (
            update(attempts)
            .where(attempts.c.id == attempt_id, attempts.c.state == AttemptState.STARTING.value)
            .values(state=AttemptState.RUNNING.value)
        )
        await self.writer.run(lambda conn, _: conn.execute(statement))

    async def set_waiting_reason(self, attempt_id: str, reason: str | None) -> None:
        """Why a started attempt's instance is not running yet (None: it runs); shown on the run.

        Unknown ids are ignored (a registration's instance has no attempt row).
        """
        statement = (
            update(attempts)
            .where(attempts.c.id == attempt_id, attempts.c.state != AttemptState.ENDED.value)
            .values(waiting_reason=reason)
        )
        await self.writer.run(lambda conn, _: conn.execute(statement))

    async def await_child(self, attempt_id: str, child_id: str) -> bool:
        """The parent polls an unfinished child: it stops holding a slot. True if it changed."""

        def wait(conn: Connection, changes: Changes) -> bool:
            workspace_id = conn.execute(_WAIT, {"b_attempt": attempt_id}).scalar()
            conn.execute(_AWAITED, {"b_run": child_id})
            if workspace_id is None:
                return False
            _events(conn, workspace_id, "waiting", [attempt_id], utcnow())
            self._admit(conn, changes, workspace_id)
            return True

        return await self.writer.run(wait)

    # -- outcomes ---------------------------------------------------------------------------

    async def record_outcome(
        self,
        attempt_id: str,
        outcome: AttemptOutcome,
        *,
        run_id: str | None = None,
        output: str | None = None,
        error: str | None = None,
        stack_trace: str | None = None,
        retryable: bool = True,
        wait_for_trace: bool = False,
    ) -> bool:
        """The attempt's outcome, once (the first wins), and the run's next state. True if set.

        A result the worker reports itself frees the attempt's slot at once: the instance is
        about to exit, and its exit is only metered. With `wait_for_trace` (an error the
        official SDKs report with no stack trace) the run stays as it is until the instance
        exits, so the trace it prints can be read from the log first.
        """
        if run_id is None:
            run_id = await self.writer.db.read(
                lambda conn: conn.scalar(
                    select(attempts.c.run_id).where(attempts.c.id == attempt_id)
                )
            )
            if run_id is None:
                raise NotFound(f"attempt {attempt_id} not found")
        stored: tuple[str | None, str | None] = (None, None)
        if output is not None:
            stored = await self.payloads.save(run_output_key(run_id), output)
        outcome_ = ReportedOutcome(outcome, error, stack_trace, stored, retryable, wait_for_trace)
        return await self.writer.run(
            functools.partial(
                self._record_outcome, run_id=run_id, attempt_id=attempt_id, outcome=outcome_
            )
        )

    def _record_outcome(
        self,
        conn: Connection,
        changes: Changes,
        *,
        run_id: str,
        attempt_id: str,
        outcome: ReportedOutcome,
    ) -> bool:
        now = utcnow()
        run = self._locked_run(conn, run_id)
        if outcome.kind is AttemptOutcome.ERROR and outcome.advances:
            memory = self.settings.plan(self.options.of(conn, {run.task_id})[run.task_id].plan)
            # a new value, not the caller's changed: this transition may run again
            error = error_text(outcome.error, outcome.stack_trace, memory.memory_mb)
            outcome = dataclasses.replace(outcome, error=error)
        values: dict[str, Any] = {
            "b_attempt": attempt_id,
            "outcome": outcome.kind.value,
            "error": outcome.error,
            "stack_trace": outcome.stack_trace,
            "waiting": False,
        }
        if outcome.advances:  # decided now: its run may end in this transaction too
            values["ended_at"] = now
        if outcome.frees_slot:
            values["state"] = AttemptState.ENDED.value
        recorded = conn.execute(_RECORD_OUTCOME, values).first()
        if recorded is None:
            return False
        if outcome.advances:
            self._advance_run(conn, changes, run, recorded.number, outcome, now)
        if outcome.frees_slot:
            _events(conn, recorded.workspace_id, "ended", [attempt_id], now)
            self._admit(conn, changes, recorded.workspace_id)
        return True

    def _locked_run(self, conn: Connection, run_id: str) -> AnyRow:
        run = conn.execute(_LOCK_RUN, {"b_run": run_id}).first()
        if run is None:
            raise NotFound(f"task run {run_id} not found")
        return run

    def _advance_run(
        self,
        conn: Connection,
        changes: Changes,
        run: AnyRow,
        number: int,
        outcome: ReportedOutcome,
        now: datetime,
    ) -> str:
        """Move a running run on after its current attempt's outcome; its status after. `now`
        is when the attempt ended: a retry is due its backoff after that."""
        if run.status != RunStatus.RUNNING.value or run.attempt_count - 1 != number:
            return str(run.status)
        kind = outcome.kind
        lost = run.lost_count + (kind is AttemptOutcome.LOST)
        values: dict[str, Any]
        if kind is AttemptOutcome.OK:
            values = {
                "status": RunStatus.SUCCEEDED.value,
                "output_json": outcome.output[0],
                "output_key": outcome.output[1],
                "completed_at": now,
                "error": None,
                "stack_trace": None,
            }
        elif kind is AttemptOutcome.CANCELED:
            values = {"status": RunStatus.CANCELED.value, "completed_at": now}
        elif outcome.retryable and (delay := self._retry_delay(conn, run, kind)) is not None:
            values = {
                "status": RunStatus.PENDING.value,
                "not_before": now + timedelta(seconds=delay),
                "error": outcome.error,
                "stack_trace": outcome.stack_trace,
                "lost_count": lost,
            }
            changes.wake = changes.wake or delay > 0  # a timer for the loop
        else:
            values = {
                "status": RunStatus.FAILED.value,
                "completed_at": now,
                "error": outcome.error,
                "stack_trace": outcome.stack_trace,
                "lost_count": lost,
            }
        conn.execute(_UPDATE_RUN, {"b_run": run.id, **values})
        changes.add(changed(run, values["status"]))
        if values["status"] != RunStatus.SUCCEEDED.value:
            self._cancel_children_of_attempt(conn, changes, run.id, number, now)
        return str(values["status"])

    def _retry_delay(self, conn: Connection, run: AnyRow, kind: AttemptOutcome) -> float | None:
        policy: RetryPolicy = (
            self.options.of(conn, {run.task_id})[run.task_id].retry or self.settings.retry.policy()
        )
        return retry_delay(run, kind, policy, max_lost=self.settings.limits.max_lost_attempts)

    # -- cancellation -----------------------------------------------------------------------

    async def cancel(self, workspace_id: str, run_id: str) -> None:
        """Cancel the run and its unfinished descendants (a finished run stays as it is)."""

        def cancel(conn: Connection, changes: Changes) -> None:
            run = conn.execute(
                select(runs)
                .where(runs.c.id == run_id, runs.c.workspace_id == workspace_id)
                .with_for_update(key_share=True)
            ).first()
            if run is None:
                raise NotFound(f"task run {run_id} not found")
            self._cancel_tree(conn, changes, [run], utcnow())

        await self.writer.run(cancel)

    def _cancel_children_of_attempt(
        self, conn: Connection, changes: Changes, run_id: str, number: int, now: datetime
    ) -> None:
        params = {"b_run": run_id, "number": number}
        children = conn.execute(_LIVE_CHILDREN_OF_ATTEMPT, params).all()
        if children:
            self._cancel_tree(conn, changes, list(children), now)

    def _cancel_tree(
        self, conn: Connection, changes: Changes, frontier: list[AnyRow], now: datetime
    ) -> None:
        while frontier:
            run = frontier.pop()
            if run.status in NON_TERMINAL:
                conn.execute(_CANCEL_RUN, {"b_run": run.id, "b_now": now})
                changes.add(changed(run, RunStatus.CANCELED.value))
                # the instance is stopped by the scheduler that watches it; its exit ends it
                conn.execute(_CANCEL_ATTEMPTS, {"b_run": run.id, "b_now": now})
            frontier.extend(conn.execute(_LIVE_CHILDREN, {"b_run": run.id}).all())

    # -- the end of an instance -------------------------------------------------------------

    async def end(
        self,
        attempt_id: str,
        *,
        exit_code: int | None,
        stack_trace_from_log: str | None,
        out_of_memory: bool = False,
    ) -> None:
        """The instance is gone: meter it; end the attempt if its result did not already."""
        await self.writer.run(
            functools.partial(
                self._end,
                attempt_id=attempt_id,
                exit_code=exit_code,
                trace=stack_trace_from_log,
                out_of_memory=out_of_memory,
            )
        )

    def _end(
        self,
        conn: Connection,
        changes: Changes,
        *,
        attempt_id: str,
        exit_code: int | None,
        trace: str | None,
        out_of_memory: bool,
    ) -> None:
        now = utcnow()
        attempt = conn.execute(_ATTEMPT_ROW, {"b_attempt": attempt_id}).first()
        if attempt is None:
            raise NotFound(f"attempt {attempt_id} not found")
        if attempt.compute_seconds is not None:
            return  # metered already
        metered = metering.meter(attempt.started_at, now, self.settings.plan(attempt.plan))
        values: dict[str, Any] = {
            "exit_code": exit_code,
            "compute_seconds": metered.compute_seconds,
            "cost_usd": metered.cost_usd,
        }
        if attempt.state == AttemptState.ENDED.value:  # its result freed its slot already
            conn.execute(_UPDATE_ATTEMPT, {"b_attempt": attempt_id, **values})
            return
        run = self._locked_run(conn, attempt.run_id)
        values |= {"state": AttemptState.ENDED.value, "waiting": False}
        if attempt.ended_at is None:
            values["ended_at"] = now
        kind, error = attempt.outcome, attempt.error
        memory_mb = self.settings.plan(attempt.plan).memory_mb
        if kind is None:
            kind, error = exit_outcome(exit_code, out_of_memory, memory_mb)
            values |= {"outcome": kind, "error": error, "stack_trace": trace}
        elif kind == AttemptOutcome.ERROR.value and not attempt.stack_trace:
            error = error_text(error, trace, memory_mb)
            values |= {"stack_trace": trace, "error": error}
        else:
            trace = attempt.stack_trace
        conn.execute(_UPDATE_ATTEMPT, {"b_attempt": attempt_id, **values})
        _events(conn, attempt.workspace_id, "ended", [attempt_id], now)
        outcome = ReportedOutcome(AttemptOutcome(kind), error, trace)
        if self._advance_run(conn, changes, run, attempt.number, outcome, now) == run.status:
            changes.add(changed(run, run.status))  # unchanged, but its attempt is: look again
        self._admit(conn, changes, attempt.workspace_id)


def _child_target(attempt_id: str, task_name: str, conn: Connection) -> tuple[AnyRow, AnyRow]:
    """The parent attempt's run and the task a child of it would run; Conflict or NotFound."""
    parent = conn.execute(
        select(
            attempts.c.number,
            attempts.c.outcome,
            runs.c.id.label("run_id"),
            runs.c.workspace_id,
            runs.c.status,
            runs.c.version_id,
            runs.c.workflow_id,
            runs.c.workflow_slug,
            runs.c.root_id,
            runs.c.depth,
        )
        .join(runs, runs.c.id == attempts.c.run_id)
        .where(attempts.c.id == attempt_id)
    ).first()
    if parent is None:
        raise NotFound(f"attempt {attempt_id} not found")
    if parent.status != RunStatus.RUNNING.value or parent.outcome is not None:
        raise Conflict(f"task run {parent.run_id} is {parent.status}: it cannot start children")
    task = conn.execute(
        select(tasks.c.id, tasks.c.name).where(
            tasks.c.version_id == parent.version_id, tasks.c.name == task_name
        )
    ).first()
    if task is None:
        raise NotFound(f"task {task_name!r} not found in the workflow of run {parent.run_id}")
    return parent, task


def _check_depth(parent: AnyRow, max_depth: int) -> None:
    if parent.depth >= max_depth:
        raise Conflict(
            f"task run {parent.run_id} is {parent.depth} levels below its root: its children "
            f"would pass the limit of {max_depth} (CONVEYOR_LIMITS__MAX_TREE_DEPTH)"
        )


def _fire(conn: Connection, changes: Changes, schedule: AnyRow, now: datetime) -> str | None:
    """The root run of a schedule's firing; None if its task is gone from the active version."""
    row = conn.execute(
        select(tasks, workflows.c.slug)
        .join(workflows, workflows.c.id == tasks.c.workflow_id)
        .where(
            workflows.c.id == schedule.workflow_id,
            tasks.c.version_id == workflows.c.active_version_id,
            tasks.c.name == schedule.task_name,
        )
    ).first()
    if row is None:  # sync removes the schedule soon
        return None
    run_id = new_id("trn")
    key = (f"schedule:{schedule.id}", schedule.next_fire_at.isoformat())
    values = root_run_values(
        run_id, schedule.workspace_id, task_info(row, row.slug), "[]", None, key, now
    )
    conn.execute(_INSERT_RUN, values)
    changes.add(changed(SimpleNamespace(**values), RunStatus.PENDING.value))
    return run_id


def _events(
    conn: Connection, workspace_id: str, kind: str, attempt_ids: list[str], at: datetime
) -> None:
    """The slot history: an attempt started, waits, resumed or ended."""
    conn.execute(
        _INSERT_EVENT,
        [
            {"attempt_id": attempt_id, "workspace_id": workspace_id, "kind": kind, "at": at}
            for attempt_id in attempt_ids
        ],
    )
