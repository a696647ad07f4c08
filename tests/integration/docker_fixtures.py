"""The host's Docker daemon for container tests: the client, the test worker image, an engine.

Nothing here skips: CI runs .ci/setup.d/20-docker.sh before the tests, so a daemon that does not
answer is a broken machine and the tests fail saying so.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from python_on_whales import Container, DockerClient

from core.domain import VersionStatus
from core.settings import DockerSettings, LimitSettings, Settings
from scheduler.runtime import Runtime
from tests.integration.engine_fixtures import WORKFLOWS, copy_workflow, executor_settings

DOCKER = "/usr/bin/docker"  # /usr/local/bin/docker may be a client without a daemon
BASE_IMAGE = "conveyor-base:bookworm"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "sdk" / "conveyor"
WORKER_WORKFLOW = WORKFLOWS / "docker"
RENDER_IMAGE_FILES = WORKFLOWS / "docker-render"
RENDER_WORKFLOWS = ("render1", "render08")
SETUP_HINT = "run .ci/setup.d/20-docker.sh (as root) to install and start Docker"


def require_docker() -> DockerClient:
    """The client of a daemon that answers, with the base image present; else the test fails."""
    try:
        info = subprocess.run(
            [DOCKER, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"Docker is not usable ({exc}); {SETUP_HINT}", pytrace=False)
    if info.returncode != 0:
        pytest.fail(
            f"the Docker daemon does not answer ({info.stderr.strip()}); {SETUP_HINT}",
            pytrace=False,
        )
    docker = DockerClient(client_call=[DOCKER])
    if not docker.image.exists(BASE_IMAGE):
        pytest.fail(f"the base image {BASE_IMAGE} is missing; {SETUP_HINT}", pytrace=False)
    return docker


@pytest.fixture(scope="session")
def docker() -> DockerClient:
    return require_docker()


def _tree_digest(digest: Any, root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")


def worker_build_args() -> dict[str, str]:
    # the host's versions: the image's SDK dependencies are the ones the suite tests against
    return {
        "HTTPX_VERSION": metadata.version("httpx"),
        "PYDANTIC_VERSION": metadata.version("pydantic"),
    }


def worker_image_tag() -> str:
    """A tag naming the image's content, so an unchanged SDK and workflow are never rebuilt."""
    digest = hashlib.sha256()
    digest.update(repr(sorted(worker_build_args().items())).encode())
    _tree_digest(digest, SDK)
    _tree_digest(digest, WORKER_WORKFLOW)
    return f"conveyor-test-worker:{digest.hexdigest()[:16]}"


def build_worker_image(docker: DockerClient) -> str:
    tag = worker_image_tag()
    if docker.image.exists(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="cvy-image-") as context:
        root = Path(context)
        ignore = shutil.ignore_patterns("__pycache__", "Dockerfile")
        shutil.copytree(SDK, root / "conveyor", ignore=ignore)
        shutil.copytree(WORKER_WORKFLOW, root / "app", ignore=ignore)
        shutil.copy(WORKER_WORKFLOW / "Dockerfile", root / "Dockerfile")
        docker.build(
            root,
            tags=[tag],
            build_args={"BASE_IMAGE": BASE_IMAGE, **worker_build_args()},
            secrets=[f"id=ca,src={HOST_CA_BUNDLE}"],
            progress=False,
        )
    return tag


@pytest.fixture(scope="session")
def worker_image(docker: DockerClient) -> str:
    return build_worker_image(docker)


def render_build_args(worker: str) -> dict[str, str]:
    return {
        "WORKER_IMAGE": worker,
        "RENDER_VERSION": metadata.version("render"),
        "RENDER_SDK_VERSION": metadata.version("render_sdk"),
    }


def build_render_image(docker: DockerClient, worker: str) -> str:
    """The worker image plus Render's official SDKs and the workflows written with them."""
    digest = hashlib.sha256()
    digest.update(repr(sorted(render_build_args(worker).items())).encode())
    _tree_digest(digest, RENDER_IMAGE_FILES)
    for name in RENDER_WORKFLOWS:
        _tree_digest(digest, WORKFLOWS / name)
    tag = f"conveyor-test-render-worker:{digest.hexdigest()[:16]}"
    if docker.image.exists(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="cvy-image-") as context:
        root = Path(context)
        for name in RENDER_WORKFLOWS:
            shutil.copytree(
                WORKFLOWS / name, root / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        shutil.copy(RENDER_IMAGE_FILES / "Dockerfile", root / "Dockerfile")
        docker.build(
            root,
            tags=[tag],
            build_args=render_build_args(worker),
            secrets=[f"id=ca,src={HOST_CA_BUNDLE}"],
            progress=False,
        )
    return tag


@pytest.fixture(scope="session")
def render_worker_image(docker: DockerClient, worker_image: str) -> str:
    return build_render_image(docker, worker_image)


def docker_settings(
    data_dir: Path, image: str, docker: dict[str, Any] | None = None, **limits: Any
) -> Settings:
    """`docker` holds DockerSettings fields beyond the binary, the image and no network."""
    return Settings(
        data_dir=data_dir,
        limits=LimitSettings(min_timeout_seconds=1, **limits),
        executor=executor_settings(kind="docker", kill_grace_seconds=1.0),
        docker=DockerSettings(
            **{"binary": DOCKER, "image": image, "network": "none", **(docker or {})}
        ),
    )


@asynccontextmanager
async def open_docker_engine(
    tmp_path: Path,
    image: str,
    *,
    stop_instances: bool = True,
    env_vars: dict[str, str] | None = None,
    docker: dict[str, Any] | None = None,
    start_command: str = "conveyor-worker main:app",
    **limits: Any,
) -> AsyncIterator[Runtime]:
    """An engine whose attempts (registration too) run in containers of `image`."""
    runtime = await Runtime.open(docker_settings(tmp_path / "data", image, docker, **limits))
    try:
        # the code runs from the image; the folder only gives the version a root
        version = await runtime.register_workflow(
            copy_workflow("docker", tmp_path),
            slug="wf",
            start_command=start_command,
            env_vars=env_vars,
        )
        assert version.status is VersionStatus.READY, version.message
        await runtime.start()
        yield runtime
    finally:
        await runtime.close(stop_instances=stop_instances)


def containers_of_run(docker: DockerClient, run_id: str) -> list[Container]:
    """Every container (running or not) labelled with the run."""
    return docker.container.list(all=True, filters=[("label", f"conveyor.run={run_id}")])


async def wait_for(
    condition: Callable[[], Any], timeout: float = 30, what: str = "condition"
) -> Any:
    """Poll a blocking `condition` (off the loop) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(condition)
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout} s")
