"""The image builder: BuildKit through `docker buildx build` (python-on-whales), then a push."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from builder.base import BuildFailed, BuildRequest, BuiltEnvironment
from builder.dockerfile import DEPS_MARKER, prepare_context
from builder.log import BuildLog
from core.settings import Settings
from scheduler.executors.docker import DockerExecutor

_STEP = re.compile(r"^#(\d+) ")


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

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._docker = DockerClient(client_call=[settings.docker.binary])

    def image_name(self, slug: str) -> str:
        registry = self._settings.builds.registry
        return f"{registry.rstrip('/')}/{slug}" if registry else f"conveyor/{slug}"

    async def build(self, request: BuildRequest, log: BuildLog) -> BuiltEnvironment:
        name = self.image_name(request.workflow_slug)
        tag = f"{name}:{(request.commit_sha or request.build_id)[:12]}"
        context = self._settings.data_dir / "build-contexts" / request.build_id
        own = (request.source / "Dockerfile").is_file()
        try:
            if own:
                log.progress(f"building {tag} with the repository's Dockerfile")
                context_path, dockerfile = request.source, request.source / "Dockerfile"
            else:
                base = self._settings.builds.base_image
                log.progress(f"building {tag} from a generated Dockerfile (FROM {base})")
                await asyncio.to_thread(context.mkdir, parents=True)
                dockerfile = await asyncio.to_thread(
                    prepare_context,
                    request.source,
                    context,
                    base_image=base,
                    build_command=request.build_command,
                )
                context_path = context
            watch = _CacheWatch()
            await asyncio.wait_for(
                asyncio.to_thread(self._build, context_path, dockerfile, name, tag, log, watch),
                self._settings.builds.build_timeout_seconds,
            )
        except TimeoutError:
            limit = self._settings.builds.build_timeout_seconds
            raise BuildFailed(f"the image build took longer than {limit:g} s") from None
        finally:
            await asyncio.to_thread(shutil.rmtree, context, True)
        cached = watch.deps_cached
        log.progress(
            f"image {tag} built"
            + (f" and pushed to {self._settings.builds.registry}" if self._push else "")
            + ("; dependency layer from the cache" if cached else "")
        )
        return BuiltEnvironment(
            env={}, image=tag, executor=DockerExecutor(self._settings.docker), cached=cached
        )

    @property
    def _push(self) -> bool:
        return self._settings.builds.registry is not None

    def _build(
        self,
        context: Path,
        dockerfile: Path,
        name: str,
        tag: str,
        log: BuildLog,
        watch: _CacheWatch,
    ) -> None:
        cache_from: str | None = None
        if self._push:
            cache_from = f"type=registry,ref={name}:latest"
        try:
            lines = self._docker.buildx.build(
                context,
                file=dockerfile,
                tags=[tag, f"{name}:latest"],
                cache_from=cache_from,
                # inline: the cache travels in the pushed image, which the docker driver supports
                cache_to="type=inline" if self._settings.builds.cache == "inline" else None,
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
