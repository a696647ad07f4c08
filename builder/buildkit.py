"""The image builder: BuildKit through `docker buildx build` (python-on-whales), then a push."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from python_on_whales.utils import run

from builder.base import BuildFailed, BuildRequest, BuiltEnvironment
from builder.dockerfile import DEPS_MARKER, prepare_context
from builder.log import BuildLog
from builder.node_dockerfile import prepare_node_context
from builder.node_project import NodeProject, is_node_project, read_node_project
from builder.processes import signal_descendants
from builder.registry_auth import RegistryAuth, make_registry_auth
from core.settings import Settings
from scheduler.executors.docker import DockerExecutor

_STEP = re.compile(r"^#(\d+) ")
_STOP_WAIT_SECONDS = 10.0  # for `docker buildx build` to end once signalled


class _CacheWatch:
    """Reads BuildKit's plain progress: was the dependency step answered from the cache?"""

    def __init__(self) -> None:
        self._deps_steps: set[str] = set()
        self.deps_cached = False

    def feed(self, line: str) -> None:
        match = _STEP.match(line)
        if match is None:
            return
        step = match.group(1)
        if DEPS_MARKER in line and "RUN" in line:
            self._deps_steps.add(step)
        elif step in self._deps_steps and line.rstrip().endswith("CACHED"):
            self.deps_cached = True


class BuildKitBuilder:
    name = "buildkit"

    def __init__(self, settings: Settings, *, auth: RegistryAuth | None = None) -> None:
        builds = settings.builds
        if builds.buildkit_address and builds.registry is None:
            raise ValueError(
                "a BuildKit daemon at CONVEYOR_BUILDS__BUILDKIT_ADDRESS pushes what it builds: "
                "set CONVEYOR_BUILDS__REGISTRY too"
            )
        self._settings = settings
        self._auth = auth or make_registry_auth(builds, settings.data_dir / "docker-config")
        self._instance: str | None = None  # the buildx builder on `buildkit_address`
        self._instance_lock = asyncio.Lock()

    def image_name(self, slug: str) -> str:
        """The repository a workflow's images go to (one per workflow, by default)."""
        registry = self._settings.builds.registry
        if registry and not self._settings.builds.repository_per_workflow:
            return registry.rstrip("/")
        return f"{registry.rstrip('/')}/{slug}" if registry else f"conveyor/{slug}"

    def image_tags(self, slug: str, version: str) -> list[str]:
        """The version's tag first. One repository for every workflow: `<slug>-<commit>` only
        (its tags may be immutable, as ECR's are); else `<commit>` and a moving `latest`."""
        name = self.image_name(slug)
        if self._settings.builds.registry and not self._settings.builds.repository_per_workflow:
            return [f"{name}:{slug}-{version}"]
        return [f"{name}:{version}", f"{name}:latest"]

    def _docker(self, config: Path | None) -> DockerClient:
        return DockerClient(
            client_call=[self._settings.docker.binary],
            host=self._settings.builds.docker_host,
            config=str(config) if config is not None else None,
        )

    async def build(self, request: BuildRequest, log: BuildLog) -> BuiltEnvironment:
        slug = request.workflow_slug
        tags = self.image_tags(slug, (request.commit_sha or request.build_id)[:12])
        tag = tags[0]
        context = self._settings.data_dir / "build-contexts" / request.build_id
        own = (request.source / "Dockerfile").is_file()
        node = None
        if await asyncio.to_thread(is_node_project, request.source, request.runtime):
            node = await asyncio.to_thread(read_node_project, request.source)
        await asyncio.to_thread(shutil.rmtree, context, True)  # left by a stopped builder
        try:
            if own:
                log.progress(f"building {tag} with the repository's Dockerfile")
                context_path, dockerfile = request.source, request.source / "Dockerfile"
            else:
                await asyncio.to_thread(context.mkdir, parents=True)
                dockerfile = await self._generate(request, node, context, tag, log)
                context_path = context
            docker = self._docker(await self._auth.config_dir())
            instance = await self._builder_instance(docker)
            watch = _CacheWatch()
            cache_from, cache_to = self.cache_options(slug)
            job = _BuildJob(context_path, dockerfile, tags, instance, cache_from, cache_to)
            await self._run_build(docker, job, log, watch)
        finally:
            await asyncio.to_thread(shutil.rmtree, context, True)
        cached = watch.deps_cached
        log.progress(
            f"image {tag} built"
            + (f" and pushed to {self._settings.builds.registry}" if self._push else "")
            + ("; dependency layer from the cache" if cached else "")
        )
        executor = None
        if self._settings.executor.kind in ("local", "docker"):
            if self._settings.executor.kind == "local":
                # a local executor cannot run an image: the register step runs in a container
                executor = DockerExecutor(self._settings.docker)
            if self._push and self._settings.builds.docker_host:
                # built on another daemon than the one containers run on: bring the image over
                log.line(f"pulling {tag} for the containers' daemon")
                await asyncio.to_thread(self._pull_for_containers, docker, tag)
        start = None
        if node is not None and request.start_command_is_default:
            start = node.start_command()
            log.line(f'start command: {start} (the "start" script of package.json)')
        return BuiltEnvironment(
            env={}, image=tag, executor=executor, cached=cached, start_command=start
        )

    async def _generate(
        self,
        request: BuildRequest,
        node: NodeProject | None,
        context: Path,
        tag: str,
        log: BuildLog,
    ) -> Path:
        builds = self._settings.builds
        base = builds.node_base_image if node is not None else builds.base_image
        kind = "a generated Node Dockerfile" if node is not None else "a generated Dockerfile"
        log.progress(f"building {tag} from {kind} (FROM {base})")
        if node is None:
            return await asyncio.to_thread(
                prepare_context,
                request.source,
                context,
                base_image=base,
                build_command=request.build_command,
            )
        return await asyncio.to_thread(
            prepare_node_context,
            node,
            context,
            base_image=base,
            build_command=request.build_command,
            ca_bundle=builds.ca_bundle,
        )

    def _pull_for_containers(self, docker: DockerClient, tag: str) -> None:
        config = docker.client_config.config
        here = DockerClient(client_call=[self._settings.docker.binary], config=config)
        try:
            here.image.pull(tag, quiet=True)
        except DockerException as exc:
            raise BuildFailed(f"docker pull {tag} failed (exit code {exc.return_code})") from None

    async def _run_build(
        self, docker: DockerClient, job: _BuildJob, log: BuildLog, watch: _CacheWatch
    ) -> None:
        limit = self._settings.builds.build_timeout_seconds
        running = asyncio.ensure_future(asyncio.to_thread(self._build, docker, job, log, watch))
        try:
            async with asyncio.timeout(limit):
                await asyncio.shield(running)
        except TimeoutError:
            await self._stop(running, job)
            raise BuildFailed(f"the image build took longer than {limit:g} s") from None
        except asyncio.CancelledError:
            await self._stop(running, job)
            raise

    async def _stop(self, running: asyncio.Future[None], job: _BuildJob) -> None:
        """End the `docker buildx build` the thread waits on (BuildKit cancels the build)."""
        signal_descendants(str(job.context))
        with contextlib.suppress(TimeoutError, Exception):
            async with asyncio.timeout(_STOP_WAIT_SECONDS):
                await asyncio.shield(running)

    async def _builder_instance(self, docker: DockerClient) -> str | None:
        """The buildx builder on `buildkit_address` (made once), or None: the daemon's own."""
        address = self._settings.builds.buildkit_address
        if not address:
            return None
        async with self._instance_lock:
            if self._instance is None:
                name = "conveyor-" + hashlib.sha256(address.encode()).hexdigest()[:10]
                await asyncio.to_thread(_ensure_remote_builder, docker, name, address)
                self._instance = name
        return self._instance

    @property
    def _push(self) -> bool:
        return self._settings.builds.registry is not None

    def cache_options(self, slug: str) -> tuple[str | None, str | None]:
        """(cache_from, cache_to) for `docker buildx build`."""
        builds = self._settings.builds
        if not self._push:
            return None, "type=inline"
        if builds.cache == "registry":
            # every layer (`mode=max`), in a repository whose tags may move
            if builds.cache_repository:
                ref = f"{builds.cache_repository.rstrip('/')}:{slug}"
            else:
                ref = f"{self.image_name(slug)}:buildcache"
            return f"type=registry,ref={ref}", f"type=registry,ref={ref},mode=max"
        # inline: the cache travels in the pushed image (the docker driver supports it), read
        # back from the workflow's `latest`
        latest = [t for t in self.image_tags(slug, "-") if t.endswith(":latest")]
        return (f"type=registry,ref={latest[0]}" if latest else None), "type=inline"

    def _build(
        self, docker: DockerClient, job: _BuildJob, log: BuildLog, watch: _CacheWatch
    ) -> None:
        try:
            lines = docker.buildx.build(
                job.context,
                file=job.dockerfile,
                tags=job.tags,
                builder=job.instance,
                cache_from=job.cache_from,
                cache_to=job.cache_to,
                load=not self._push,
                push=self._push,
                progress="plain",
                stream_logs=True,
            )
            assert isinstance(lines, Iterator)
            for line in lines:
                watch.feed(line)
                log.line(line)
        except DockerException as exc:
            raise BuildFailed(f"docker buildx build failed (exit code {exc.return_code})") from None


@dataclass(frozen=True)
class _BuildJob:
    context: Path
    dockerfile: Path
    tags: list[str]
    instance: str | None
    cache_from: str | None
    cache_to: str | None


def _ensure_remote_builder(docker: DockerClient, name: str, address: str) -> None:
    """`docker buildx create --driver remote` once per docker config (it is kept there)."""
    buildx = [*docker.client_config.docker_cmd, "buildx"]
    try:
        run([*buildx, "inspect", name])
    except DockerException:
        try:
            run([*buildx, "create", "--driver", "remote", "--name", name, address])
        except DockerException as exc:
            raise BuildFailed(
                f"cannot use the BuildKit daemon at {address} (exit code {exc.return_code})"
            ) from None
