"""The engine assembled in one process: database, blobs, events, store, scheduler, agent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from core.auth import ApiKeys
from core.blobs import LocalBlobStore
from core.blobs.base import BlobStore
from core.data_dir import prepare_data_dir
from core.db.database import open_database
from core.db.engine import create_engine, migrate, session_factory
from core.db.write_lock import WriteLock
from core.domain import VersionInfo
from core.events import EventBus
from core.ids import new_id
from core.notify import PgListener, asyncpg_dsn
from core.settings import Settings
from scheduler.agent import Agent
from scheduler.descriptors import raise_descriptor_limit
from scheduler.executors.base import Executor, ReasonSink, check_ready
from scheduler.executors.journal import InstanceJournal
from scheduler.executors.local import LocalExecutor
from scheduler.executors.zygotes import ZygotePool
from scheduler.log_clock import LogClock
from scheduler.payloads import PayloadStore
from scheduler.registration import Registrar
from scheduler.runs.logs import RunLogs
from scheduler.runs.rows import NON_TERMINAL, runs
from scheduler.runs.service import RunService
from scheduler.runs.store import EngineStore
from scheduler.runs.transitions import Transitions
from scheduler.runs.writes import Writer
from scheduler.sandbox.policy import SandboxPolicy, SandboxUnavailable, sandbox_problem
from scheduler.scheduler import Scheduler

logger = logging.getLogger(__name__)

DEFAULT_WORKSPACE_ID = "wsp-default"

Work = Literal["tasks", "builds"]
EVERYTHING: frozenset[Work] = frozenset({"tasks", "builds"})  # `conveyor dev`, tests
NOTHING: frozenset[Work] = frozenset()  # commands that only read and write the database


def needs_sandbox(settings: Settings, work: frozenset[Work]) -> bool:
    """Whether a process doing `work` launches untrusted code itself, and so needs the sandbox.

    Tasks on the process executors run here; so do builds on the embedded (venv) builder, and
    every build's register step (it imports the workflow) when tasks run on the process
    executors. Docker, Nomad and BuildKit put that code in containers of their own.
    """
    local_tasks = settings.executor.kind == "local"
    if "tasks" in work and local_tasks:
        return True
    return "builds" in work and (local_tasks or settings.builds.builder == "venv")


def _blob_store(settings: Settings) -> BlobStore:
    url = settings.blobs.url
    if url is None:
        return LocalBlobStore(settings.data_dir / "blobs")
    if url.startswith("file://"):
        return LocalBlobStore(Path(url.removeprefix("file://")))
    if url.startswith("s3:"):
        # boto3 costs ~0.3 s to import: only engines configured for S3 pay it
        from core.blobs.s3 import S3BlobStore, S3Options

        options = S3Options(
            settings.blobs.endpoint_url, settings.blobs.region, settings.blobs.presign_seconds
        )
        return S3BlobStore.from_url(url, settings.data_dir / "spool", options)
    raise ValueError(f"unsupported blob store URL {url!r} (expected file:///path or s3://bucket)")


def local_sandbox(settings: Settings, *, required: bool = True) -> SandboxPolicy | None:
    """The process executors' sandbox, or None when it is off.

    Raises:
        SandboxUnavailable: It is on and `required`, and the kernel refuses it here (not
            required — `conveyor dev` — it is then off, with a warning).
    """
    if settings.executor.sandbox == "off":
        logger.warning(
            "the sandbox is off (CONVEYOR_EXECUTOR__SANDBOX=off): tasks and build commands run "
            "as this process's user and can read what it can read"
        )
        return None
    problem = sandbox_problem()
    if problem is not None and required:
        raise SandboxUnavailable(
            f"the kernel refuses the task sandbox here ({problem}); run where user and mount "
            "namespaces are allowed, or set CONVEYOR_EXECUTOR__SANDBOX=off on purpose"
        )
    if problem is not None:
        logger.warning(
            "tasks run WITHOUT a sandbox: the kernel refuses it here (%s); they can read what "
            "this process can read",
            problem,
        )
        return None
    return SandboxPolicy(
        settings.sandbox,
        hidden=[settings.data_dir],
        state_dir=settings.data_dir / "sandbox",
    )


def _executor(settings: Settings, reasons: ReasonSink, sandbox: SandboxPolicy | None) -> Executor:
    if settings.executor.kind == "local":
        zygotes = None
        if settings.executor.zygote:
            zygotes = ZygotePool(
                settings.data_dir / "zygotes",
                idle_seconds=settings.executor.zygote_idle_seconds,
                max_zygotes=settings.executor.max_zygotes,
                sandbox=sandbox,
            )
        return LocalExecutor(
            enforce_memory=settings.executor.enforce_memory,
            pass_env=settings.executor.pass_env,
            zygotes=zygotes,
            journal=InstanceJournal(settings.data_dir / "instances"),
            sandbox=sandbox,
        )
    if settings.executor.kind == "docker":
        # python-on-whales is only imported by engines that run containers
        from scheduler.executors.docker import DockerExecutor

        return DockerExecutor(settings.docker)
    if settings.executor.kind == "nomad":
        # the Nomad client is only imported by engines that dispatch to a cluster
        from scheduler.executors.nomad import NomadExecutor
        from scheduler.executors.nomad_api import NomadHttpApi

        return NomadExecutor(settings, NomadHttpApi(settings.nomad), reasons)
    raise ValueError(f"unknown executor {settings.executor.kind!r}")


async def _seed_workspace(transitions: Transitions, settings: Settings) -> None:
    """The default workspace, its limit seeded by this process's setting if it is new."""
    seed = settings.limits.max_concurrency
    try:
        stored = await transitions.ensure_workspace(DEFAULT_WORKSPACE_ID, "default", seed)
    except IntegrityError:
        # another process starting at the same moment created it first: read its limit
        stored = await transitions.ensure_workspace(DEFAULT_WORKSPACE_ID, "default", seed)
    if stored != seed and "max_concurrency" in settings.limits.model_fields_set:
        logger.warning(
            "workspace %s keeps its max concurrency of %d: a process's setting (%d here) only "
            "seeds a new workspace; change it with `conveyor workspace set --max-concurrency`",
            DEFAULT_WORKSPACE_ID,
            stored,
            seed,
        )


class Runtime:
    """Build with `await Runtime.open(settings)`, then `await start()`; `close()` ends it."""

    def __init__(
        self,
        store: EngineStore,
        transitions: Transitions,
        service: RunService,
        scheduler: Scheduler,
        registrar: Registrar,
        executor: Executor,
    ) -> None:
        self.settings = store.settings
        self.engine = store.engine
        self.store = store
        self.transitions = transitions
        self.service = service
        self.scheduler = scheduler
        self.registrar = registrar
        self.executor = executor
        self.keys = ApiKeys(store.sessions)
        self.sandbox: SandboxPolicy | None = None  # None: off on purpose
        self._loop_task: asyncio.Task[None] | None = None
        self._listener: PgListener | None = None
        self._log_clock: LogClock | None = None

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        work: frozenset[Work] = EVERYTHING,
        sandbox_required: bool = True,
    ) -> Runtime:
        """Everything a control-plane process runs. `work` is what this process launches (see
        `needs_sandbox`); `sandbox_required=False` (`conveyor dev`) starts without the sandbox,
        with a warning, where the kernel refuses it."""
        raise_descriptor_limit()
        await asyncio.to_thread(prepare_data_dir, settings)
        blobs = _blob_store(settings)
        await blobs.check()
        database = settings.database
        engine = create_engine(
            settings.database_url,
            echo=database.echo,
            pool_size=database.pool_size,
            max_overflow=database.max_overflow,
        )
        await migrate(engine)
        sessions = session_factory(engine)
        lock = WriteLock(serialise=engine.dialect.name == "sqlite")
        bus = EventBus()
        payloads = PayloadStore(blobs, inline_bytes=settings.blobs.inline_bytes)
        store = EngineStore(settings, engine, sessions, blobs, bus, payloads)
        db = open_database(engine, lock)
        writer = Writer(db, bus, origin=new_id("proc"))
        transitions = Transitions(settings, writer, payloads)
        service = RunService(settings, transitions, payloads, bus, RunLogs(db, blobs, bus))
        await _seed_workspace(transitions, settings)
        agent = Agent(settings, transitions, service)
        sandbox = None
        if needs_sandbox(settings, work):
            sandbox = local_sandbox(settings, required=sandbox_required)
        executor = _executor(settings, transitions.set_waiting_reason, sandbox)
        registrar = Registrar(settings, sessions, agent, executor, blobs)
        scheduler = Scheduler(
            settings, transitions, service, agent, executor, blobs, registrar, engine
        )
        runtime = cls(store, transitions, service, scheduler, registrar, executor)
        runtime.sandbox = sandbox
        if writer.cross_process:
            runtime._listener = PgListener(
                asyncpg_dsn(settings.database_url), writer.origin, bus, writer.wake_scheduler
            )
            await runtime._listener.start()
        return runtime

    async def start(self) -> None:
        """Reconcile attempts left by a previous process, then run the scheduler loop."""
        await check_ready(self.executor)
        recovered = await self.scheduler.start()
        if recovered:
            logger.warning("reconciled %d attempts left by the previous process", recovered)
        await self.registrar.prepare_active()
        self._loop_task = asyncio.create_task(self.scheduler.run_forever())
        # when each log line arrived (the dashboard's timestamps), for this scheduler's attempts
        membership = self.scheduler.membership
        store = self.store
        self._log_clock = LogClock(self.service.db, store.blobs, store.bus, lambda: membership.id)
        await self._log_clock.start()

    async def register_workflow(
        self,
        path: Path,
        *,
        slug: str,
        start_command: str,
        env_vars: Mapping[str, str] | None = None,
    ) -> VersionInfo:
        """Run `start_command` in register mode in `path`; a ready version becomes active."""
        return await self.registrar.register(
            DEFAULT_WORKSPACE_ID, path, slug=slug, start_command=start_command, env_vars=env_vars
        )

    async def run_until_idle(self, timeout: float = 60.0) -> None:
        """Wait until no run is pending or running (tests)."""
        async with asyncio.timeout(timeout), self.store.bus.subscribe() as changes:
            while await self._unfinished() > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await changes.get()

    async def _unfinished(self) -> int:
        query = select(func.count()).where(runs.c.status.in_(NON_TERMINAL))
        count = await self.service.db.read(lambda conn: conn.scalar(query))
        return int(count or 0)

    async def close(self, *, stop_instances: bool = True) -> None:
        """Stop the scheduler (if started) and release connections.

        With `stop_instances`, running instances are stopped and their attempts retried as lost
        at the next start (embedded dev); without, they are left for another scheduler or the
        next start to reconcile (production's graceful shutdown).
        """
        if self._log_clock is not None:
            await self._log_clock.close()
        if self._loop_task is not None:
            await self.scheduler.shutdown(stop_instances=stop_instances)
        if self._listener is not None:
            await self._listener.close()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await self.executor.close()
        await self.transitions.writer.flush()
        await self.transitions.writer.db.close()
        await self.engine.dispose()
