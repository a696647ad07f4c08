"""Each attempt is a container on this host's Docker daemon, from the version's image.

The attempt's socket folder is bind-mounted at the same path, so the worker finds the socket
where `RENDER_SDK_SOCKET_PATH` says; the folder is handed to the container's unprivileged user,
and the container is locked down as `docker_options` describes. The container's output is
streamed to the attempt's log by a `docker logs -f` child; when that stream ends the container has
ended, and a reaper reads its exit state (`OOMKilled` included) and removes it. Containers are
found again by name and labels after a control-plane restart, so reconciliation can stop what a
previous process left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_on_whales import Container, DockerClient
from python_on_whales.exceptions import DockerException, NoSuchContainer, NoSuchImage

from core.settings import DockerSettings
from scheduler.executors.base import (
    AttemptSpec,
    Handle,
    InstanceState,
    InstanceStatus,
    VersionSpec,
)
from scheduler.executors.docker_options import (
    container_identity,
    hand_over,
    parse_mount,
    run_options,
)

logger = logging.getLogger(__name__)

_ALIVE_STATES = frozenset({"created", "running", "restarting", "paused", "removing"})
_POLL_SECONDS = 0.2


class DockerStartError(RuntimeError):
    """The daemon refused to start an attempt's container."""

    def __init__(self, attempt_id: str, image: str, cause: str) -> None:
        super().__init__(f"attempt {attempt_id}: could not start a container from {image}: {cause}")


def _state_of(container: Container) -> InstanceState:
    state = container.state
    if state.status in _ALIVE_STATES:
        return InstanceState(InstanceStatus.ALIVE)
    return InstanceState(
        InstanceStatus.EXITED,
        exit_code=state.exit_code,
        out_of_memory=bool(state.oom_killed),
    )


@dataclass
class _Watch:
    """A container this process started: its log stream and the reaper that ends with it."""

    attempt_id: str
    reaper: asyncio.Task[InstanceState] | None = None
    final: InstanceState | None = field(default=None)


class DockerExecutor:
    name = "docker"

    def __init__(self, settings: DockerSettings, client: DockerClient | None = None) -> None:
        self._settings = settings
        self._docker = client or DockerClient(client_call=[settings.binary])
        self._mounts = [parse_mount(m) for m in settings.mounts]
        self.identity = container_identity(settings.user, os.geteuid(), os.getegid())
        self._watches: dict[str, _Watch] = {}

    def container_name(self, attempt_id: str) -> str:
        return f"{self._settings.name_prefix}-{attempt_id}"

    # -- start ----------------------------------------------------------------------------------

    async def start(self, spec: AttemptSpec) -> Handle:
        argv = shlex.split(spec.start_command)
        if not argv:
            raise ValueError("empty start command")
        image = spec.image or self._settings.image
        name = self.container_name(spec.attempt_id)
        try:
            await asyncio.to_thread(hand_over, spec.socket_path, self.identity)
        except PermissionError:
            cause = (
                f"its socket folder cannot be given to {self.identity}: run the control plane "
                "as root, or set CONVEYOR_DOCKER__USER to the control plane's own UID:GID"
            )
            raise DockerStartError(spec.attempt_id, image, cause) from None
        options: dict[str, Any] = {
            "name": name,
            "detach": True,
            **run_options(self._settings, spec, self.identity, self._mounts),
        }
        try:
            container = await asyncio.to_thread(self._run, image, argv, options)
        except (NoSuchImage, DockerException) as exc:
            raise DockerStartError(spec.attempt_id, image, _cause(exc)) from None
        watch = _Watch(spec.attempt_id)
        self._watches[container.id] = watch
        follower = await self._follow_logs(container.id, spec)
        watch.reaper = asyncio.create_task(self._reap(container.id, follower, watch))
        logger.info(
            "run %s attempt %s: container %s (%s) started from %s",
            spec.run_id,
            spec.attempt,
            name,
            container.id[:12],
            image,
        )
        return {"container": name, "id": container.id}

    def _run(self, image: str, argv: list[str], options: dict[str, Any]) -> Container:
        container = self._docker.run(image, argv, **options)
        assert isinstance(container, Container)  # what `detach=True` returns
        return container

    async def _follow_logs(
        self, container_id: str, spec: AttemptSpec
    ) -> asyncio.subprocess.Process:
        """`docker logs -f` into the attempt's log: it ends when the container does."""
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with spec.log_path.open("ab") as log:
            return await asyncio.create_subprocess_exec(
                self._settings.binary,
                "logs",
                "--follow",
                container_id,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    async def _reap(
        self, container_id: str, follower: asyncio.subprocess.Process, watch: _Watch
    ) -> InstanceState:
        """Wait for the end, read the exit state, then remove the container (logs are in)."""
        try:
            await follower.wait()
            state = await self._inspect(container_id)
            # the stream can end early (a daemon restart): fall back to asking
            while state.status is InstanceStatus.ALIVE:
                await asyncio.sleep(_POLL_SECONDS)
                state = await self._inspect(container_id)
        finally:
            if follower.returncode is None:
                follower.kill()
                await follower.wait()
        watch.final = state
        await self._remove(container_id)
        if state.out_of_memory:
            logger.warning(
                "attempt %s: container %s was killed for exceeding its memory",
                watch.attempt_id,
                container_id[:12],
            )
        return state

    # -- ask and wait ---------------------------------------------------------------------------

    async def _inspect(self, container_id: str) -> InstanceState:
        try:
            container = await asyncio.to_thread(self._docker.container.inspect, container_id)
        except NoSuchContainer:
            return InstanceState(InstanceStatus.UNKNOWN)
        assert isinstance(container, Container)
        return _state_of(container)

    async def status(self, handle: Handle) -> InstanceState:
        watch = self._watches.get(handle["id"])
        if watch is not None and watch.final is not None:
            return watch.final
        return await self._inspect(handle["id"])

    async def prepare(self, version: VersionSpec) -> None:
        """Nothing to warm: each attempt is a new container from the version's image."""

    async def find(self, attempt_id: str, log_path: Path, socket_path: Path) -> Handle | None:
        """By its name, which comes from the attempt."""
        name = self.container_name(attempt_id)
        found = await asyncio.to_thread(
            self._docker.container.list, all=True, filters=[("name", f"^{name}$")]
        )
        return {"container": name, "id": found[0].id} if found else None

    async def adopt(self, attempt_id: str, handle: Handle) -> None:
        """Nothing to keep: the handle in the database is all there is."""

    async def close(self) -> None:
        """Nothing held: containers outlive this process and are found again by name."""

    async def wait(self, handle: Handle) -> InstanceState:
        watch = self._watches.get(handle["id"])
        if watch is None or watch.reaper is None:
            return await self._poll_until_gone(handle)
        state = await asyncio.shield(watch.reaper)
        self._watches.pop(handle["id"], None)
        return state

    async def _poll_until_gone(self, handle: Handle) -> InstanceState:
        state = await self._inspect(handle["id"])
        while state.status is InstanceStatus.ALIVE:
            await asyncio.sleep(_POLL_SECONDS)
            state = await self._inspect(handle["id"])
        await self._remove(handle["id"])
        return state

    # -- stop -----------------------------------------------------------------------------------

    async def stop(self, handle: Handle, grace_s: float) -> None:
        container_id = handle["id"]
        await self._signal(container_id, "TERM")
        try:
            async with asyncio.timeout(grace_s):
                await self._gone_or_exited(handle)
        except TimeoutError:
            logger.info(
                "container %s outlived its %g s grace: killed", handle["container"], grace_s
            )
        await self._signal(container_id, "KILL")
        watch = self._watches.get(container_id)
        if watch is not None and watch.reaper is not None:
            await asyncio.shield(watch.reaper)  # it removes the container once its logs are in
        else:
            await self._remove(container_id)

    async def _gone_or_exited(self, handle: Handle) -> None:
        while (await self.status(handle)).status is InstanceStatus.ALIVE:
            await asyncio.sleep(_POLL_SECONDS)

    async def _signal(self, container_id: str, signal: str) -> None:
        # a container that already ended (or is gone) answers with an error we have no use for
        with contextlib.suppress(NoSuchContainer, DockerException):
            await asyncio.to_thread(self._docker.container.kill, container_id, signal)

    async def _remove(self, container_id: str) -> None:
        try:
            await asyncio.to_thread(self._docker.container.remove, container_id, force=True)
        except NoSuchContainer:
            return
        except DockerException as exc:
            cause = _cause(exc)
            if "already in progress" not in cause:  # another stop or reaper got there first
                logger.warning("could not remove container %s: %s", container_id[:12], cause)


def _cause(exc: DockerException) -> str:
    """The daemon's own words, without python-on-whales' command-line preamble."""
    lines = [line.strip() for line in (exc.stderr or "").splitlines() if line.strip()]
    if not lines:
        return str(exc)
    # the CLI's first line is the daemon's answer; later ones are usage hints
    return lines[0].removeprefix("docker: ")
