"""The local executor's zygotes: one per version, start command and environment.

A zygote starts ahead of need when its version becomes active (or at its first attempt), is
started again if it dies, and is closed once idle for `executor.zygote_idle_seconds`. A start
command a zygote cannot serve (another form, a script that does more than import at start, an
entry point that starts threads at import) is remembered, and its attempts are spawned.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler.executors.base import VersionSpec
from scheduler.executors.zygote import Zygote, ZygoteEntry, ZygoteUnusable, zygote_entry
from scheduler.instance_sockets import sockets_root
from scheduler.sandbox.policy import SandboxPolicy

logger = logging.getLogger(__name__)

_Entry = ZygoteEntry | None  # None: the start command is spawned


@dataclass(frozen=True)
class ZygoteKey:
    """Attempts that may share a zygote: same version, command, folder and environment."""

    version_id: str
    start_command: str
    cwd: str
    env_digest: str

    @classmethod
    def of(cls, version: VersionSpec, env: dict[str, str]) -> ZygoteKey:
        digest = hashlib.sha256(repr(sorted(env.items())).encode()).hexdigest()[:16]
        return cls(version.version_id, version.start_command, str(version.cwd), digest)

    @property
    def label(self) -> str:
        return f"{self.version_id}-{self.env_digest[:8]}"


class ZygotePool:
    """Zygotes by key; `fork` gives a child or None when the attempt must be spawned."""

    def __init__(
        self,
        root: Path,
        *,
        idle_seconds: float,
        max_zygotes: int,
        sandbox: SandboxPolicy | None = None,
    ) -> None:
        self._root = root  # each zygote's own output (import errors, prints at import)
        self._sandbox = sandbox
        self._idle_seconds = idle_seconds
        self._max = max_zygotes
        self._zygotes: dict[ZygoteKey, Zygote] = {}
        self._starting: dict[ZygoteKey, asyncio.Task[Zygote]] = {}
        self._unusable: dict[ZygoteKey, str] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        # per version: its environment, and the key and entry worked out from it
        self._targets: dict[tuple[str, str, str], tuple[dict[str, str], ZygoteKey, _Entry]] = {}

    def _target(self, version: VersionSpec, env: dict[str, str]) -> tuple[ZygoteKey, _Entry]:
        """The zygote a version's attempts fork from (worked out once per version)."""
        lookup = (version.version_id, version.start_command, str(version.cwd))
        known = self._targets.get(lookup)
        if known is None or known[0] != env:
            entry = zygote_entry(version.start_command, env.get("PATH", ""))
            known = (dict(env), ZygoteKey.of(version, env), entry)
            self._targets[lookup] = known
        return known[1], known[2]

    def prepare(self, version: VersionSpec, env: dict[str, str]) -> None:
        """Start the version's zygote now, in the background, so its first attempt forks."""
        key, entry = self._target(version, env)
        if entry is None or key in self._unusable or self._current(key) is not None:
            return
        self._start(key, entry, version, env)

    async def zygote_for(self, version: VersionSpec, env: dict[str, str]) -> Zygote | None:
        """The version's zygote, ready, or None: its attempts are spawned."""
        key, entry = self._target(version, env)
        if entry is None or key in self._unusable:
            return None
        try:
            zygote = self._current(key) or await self._start(key, entry, version, env)
            await zygote.ready()
        except ZygoteUnusable as exc:
            self._give_up(key, str(exc))
            return None
        except (OSError, TimeoutError) as exc:
            logger.warning("zygote of version %s could not start (%s): spawning", key.label, exc)
            return None
        return zygote

    async def fork(
        self,
        zygote: Zygote,
        version: VersionSpec,
        env: dict[str, str],
        attempt_env: dict[str, str],
        log: Path,
        memory_bytes: int | None,
        sandbox: dict[str, Any] | None = None,
        join_fds: Sequence[int] = (),
    ) -> int | None:
        """A child of `zygote` running the attempt, or None: spawn it instead."""
        key, _ = self._target(version, env)
        try:
            pid = await zygote.fork(attempt_env, log, memory_bytes, sandbox, join_fds)
        except ZygoteUnusable as exc:
            self._give_up(key, str(exc))
            return None
        except (OSError, TimeoutError) as exc:
            logger.warning("zygote of version %s could not fork (%s): spawning", key.label, exc)
            return None
        return pid

    def _current(self, key: ZygoteKey) -> Zygote | None:
        zygote = self._zygotes.get(key)
        if zygote is not None and not zygote.alive:
            logger.warning(
                "zygote %s of version %s ended (%s): starting another",
                zygote.process.pid,
                key.label,
                zygote.process.returncode,
            )
            self._discard(key)
            return None
        return zygote

    def _start(
        self, key: ZygoteKey, entry: ZygoteEntry, version: VersionSpec, env: dict[str, str]
    ) -> asyncio.Task[Zygote]:
        starting = self._starting.get(key)
        if starting is None:
            starting = asyncio.create_task(self._launch(key, entry, version, env))
            self._starting[key] = starting
            starting.add_done_callback(lambda task: self._started(key, task))
        return starting

    def _started(self, key: ZygoteKey, task: asyncio.Task[Zygote]) -> None:
        self._starting.pop(key, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            # a prepare nobody awaits: say why here (a fork awaiting it spawns instead)
            logger.warning("zygote of version %s could not start: %s", key.label, error)

    async def _launch(
        self, key: ZygoteKey, entry: ZygoteEntry, version: VersionSpec, env: dict[str, str]
    ) -> Zygote:
        log_path = self._root / f"{key.label}.log"
        view, identity = None, None
        if self._sandbox is not None:
            identity = self._sandbox.identity()
            view = self._sandbox.view(
                cwd=version.cwd,
                env=env,
                identity=identity,
                shared=[sockets_root()],
                readable=[Path(entry.script).parent],
            )
        try:
            zygote = await Zygote.start(
                entry, cwd=version.cwd, env=env, log_path=log_path, view=view, identity=identity
            )
        except BaseException:
            if identity is not None:
                identity.release()
            raise
        self._zygotes[key] = zygote
        self._ensure_reaper()
        await self._evict_beyond_limit(keep=key)
        try:
            await zygote.ready()
        except ZygoteUnusable as exc:
            self._give_up(key, str(exc))
        except TimeoutError:
            logger.warning("zygote of version %s is not ready in time", key.label)
        else:
            logger.info("zygote %s ready for version %s", zygote.process.pid, key.label)
        return zygote

    def _give_up(self, key: ZygoteKey, reason: str) -> None:
        if key not in self._unusable:
            logger.warning(
                "version %s: `%s` cannot be forked from a zygote (%s); its attempts are spawned",
                key.version_id,
                key.start_command,
                reason,
            )
        self._unusable[key] = reason
        self._discard(key)

    def _discard(self, key: ZygoteKey) -> None:
        zygote = self._zygotes.pop(key, None)
        if zygote is not None:
            closing = asyncio.create_task(zygote.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def _evict_beyond_limit(self, keep: ZygoteKey) -> None:
        idle = sorted(
            (z.last_used, k) for k, z in self._zygotes.items() if k != keep and z.children == 0
        )
        while len(self._zygotes) > self._max and idle:
            _, key = idle.pop(0)
            await self._zygotes.pop(key).close()

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap_idle())

    async def _reap_idle(self) -> None:
        loop = asyncio.get_running_loop()
        while self._zygotes:
            await asyncio.sleep(min(self._idle_seconds / 2, 30.0))
            now = loop.time()
            for key, zygote in list(self._zygotes.items()):
                # idle since it became ready: one still starting (slower than the idle time
                # in a sandbox) is not closed under the attempt waiting for it
                idle = now - zygote.last_used >= self._idle_seconds and not zygote.starting
                if (idle and zygote.children == 0) or not zygote.alive:
                    del self._zygotes[key]
                    await zygote.close()

    async def close(self) -> None:
        """End every zygote (children that still run are not touched)."""
        for starting in list(self._starting.values()):
            with contextlib.suppress(Exception):
                await starting
        if self._reaper is not None:
            self._reaper.cancel()
        zygotes = list(self._zygotes.values())
        self._zygotes.clear()
        for zygote in zygotes:
            await zygote.close()
        for closing in list(self._closing):
            await closing

    @property
    def pids(self) -> list[int]:
        """The zygotes' own processes (tests, metrics)."""
        return [z.process.pid for z in self._zygotes.values()]

    async def ready_pids(self) -> list[int]:
        """The zygotes' processes once those starting are ready (or found unusable)."""
        for starting in list(self._starting.values()):
            with contextlib.suppress(Exception):
                await starting
        return self.pids
