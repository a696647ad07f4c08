"""The repository's Dockerfile: built with BuildKit on the local base image, run, asked /healthz."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from python_on_whales import Container, DockerClient

from tests.integration.docker_fixtures import BASE_IMAGE, HOST_CA_BUNDLE, REPO, docker

__all__ = ["docker"]  # re-exported: pytest finds fixtures by module name

pytestmark = pytest.mark.slow

TAG = "conveyor-test-control-plane:latest"
MAX_IMAGE_BYTES = 450 * 10**6  # base image ~190 MB + the server's virtualenv


@pytest.fixture(scope="module")
def control_plane_image(docker: DockerClient) -> str:
    # BuildKit's own cache makes a rebuild of unchanged sources take seconds
    docker.build(
        REPO,
        tags=[TAG],
        build_args={"BASE_IMAGE": BASE_IMAGE},
        secrets=[f"id=ca,src={HOST_CA_BUNDLE}"],
        progress=False,
    )
    return TAG


@pytest.fixture
def control_plane(
    docker: DockerClient, control_plane_image: str
) -> Iterator[tuple[Container, str]]:
    # `127.0.0.1::8120`: Docker picks the host port and holds it; read back below
    container = docker.run(
        control_plane_image,
        detach=True,
        # as infra/nomad/conveyor-server.nomad.hcl runs it: builds on `conveyor builder`s
        envs={"CONVEYOR_BUILDS__IN_PROCESS": "false"},
        publish=[("127.0.0.1:", 8120)],
        health_interval=1,  # the image's check, asked more often than its 15 s default
        pull="never",
    )
    assert isinstance(container, Container)
    try:
        ports: Any = docker.container.inspect(container.id).network_settings.ports
        [binding] = ports["8120/tcp"]
        yield container, f"http://127.0.0.1:{binding['HostPort']}"
    finally:
        docker.container.remove(container, force=True)


def _wait_healthz(url: str, container: Container, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/healthz", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        assert container.state.running, f"the server exited:\n{container.logs()}"
        time.sleep(0.2)
    raise AssertionError(f"/healthz did not answer 200 within {timeout} s:\n{container.logs()}")


def test_the_image_serves_healthz_as_an_unprivileged_user(
    docker: DockerClient, control_plane: tuple[Container, str]
) -> None:
    container, url = control_plane
    response = _wait_healthz(url, container)
    assert response.json() == {"status": "ok"}
    uid = docker.execute(container, ["id", "-u"])
    assert isinstance(uid, str) and uid.strip() != "0"
    deadline = time.monotonic() + 30
    while (health := container.state.health) is None or health.status != "healthy":
        assert time.monotonic() < deadline, f"the HEALTHCHECK never passed: {health}"
        time.sleep(0.5)


def test_the_image_is_small_and_carries_the_cli(
    docker: DockerClient, control_plane_image: str
) -> None:
    image = docker.image.inspect(control_plane_image)
    assert image.size is not None and image.size < MAX_IMAGE_BYTES
    assert image.config.user == "conveyor"
    help_text = docker.run(control_plane_image, ["conveyor", "--help"], remove=True)
    assert isinstance(help_text, str)
    for command in ("server", "scheduler", "agent"):
        assert command in help_text


def test_the_image_will_not_build_tenant_code_unsandboxed(
    docker: DockerClient, control_plane_image: str
) -> None:
    """Docker's default seccomp profile refuses user namespaces: a server that would run build
    commands itself says so and exits, rather than run them as its own user."""
    container = docker.run(control_plane_image, detach=True, pull="never")
    assert isinstance(container, Container)
    try:
        assert docker.container.wait(container) == 1
        logs = container.logs()
    finally:
        docker.container.remove(container, force=True)
    assert "error: the kernel refuses the task sandbox here (sandbox: unshare:" in logs
    assert "CONVEYOR_EXECUTOR__SANDBOX=off on purpose" in logs
