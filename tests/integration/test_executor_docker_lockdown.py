"""A run's container on the real daemon is locked down: an unprivileged user, no capabilities,
no-new-privileges, a pids limit, a read-only root filesystem with a tmpfs /tmp, and only the
operator's mounts besides its own socket folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from core.domain import RunStatus
from tests.integration.docker_fixtures import (
    containers_of_run,
    docker,
    open_docker_engine,
    render_worker_image,
    wait_for,
    worker_image,
)
from tests.integration.engine_fixtures import WS, run_to_end

# re-exported: pytest finds fixtures by module name
__all__ = ["docker", "render_worker_image", "worker_image"]

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RENDER1 = "python -m render.workflows.cli main:app"  # in /render1, the image's working directory
RENDER08 = "sh -c 'cd /render08 && exec python -m render_sdk.workflows.cli main:app'"
EROFS = "OSError errno=30"  # a read-only file system: refused whatever the file's permissions


async def test_a_runs_container_inspects_as_locked_down(
    tmp_path: Path, worker_image: str, docker: DockerClient
) -> None:
    async with open_docker_engine(tmp_path, worker_image) as runtime:
        run = await runtime.service.create_run(WS, "wf/hold", [])
        (container,) = await wait_for(
            lambda: [c for c in containers_of_run(docker, run.id) if c.state.running],
            what="the run's container running",
        )
        inspected = docker.container.inspect(container.id)  # while it runs: removed once ended
        user, host = inspected.config.user, inspected.host_config
        await runtime.service.cancel_run(WS, run.id)
    assert user == "65534:65534"  # the control plane runs as root here
    assert host.cap_drop == ["ALL"]
    assert host.cap_add is None
    assert host.security_opt == ["no-new-privileges"]
    assert host.privileged is False
    assert host.pids_limit == 512
    assert host.readonly_rootfs is True
    assert host.tmpfs == {Path("/tmp"): "rw,exec,nosuid,nodev,size=512m,mode=1777"}


@pytest.mark.parametrize(
    ("configured", "uid", "gid"), [(None, 65534, 65534), ("2000:3000", 2000, 3000)]
)
async def test_the_task_runs_unprivileged_with_its_home_in_tmp(
    tmp_path: Path, worker_image: str, configured: str | None, uid: int, gid: int
) -> None:
    docker_options = {} if configured is None else {"user": configured}
    async with open_docker_engine(tmp_path, worker_image, docker=docker_options) as runtime:
        run = await run_to_end(runtime, "wf/identity", [])
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.results == [
        {
            "uid": uid,
            "gid": gid,
            "groups": [gid],  # its own group only: no supplementary groups
            "home": "/tmp",
            "tmpdir": "/tmp",
            "effective_capabilities": "0000000000000000",
            "bounding_capabilities": "0000000000000000",
            "no_new_privs": "1",
        }
    ]


async def test_a_task_writes_only_to_tmp_and_read_write_mounts(
    tmp_path: Path, worker_image: str
) -> None:
    shared = tmp_path / "shared"  # the operator's read-write folder, open to the runs' user
    shared.mkdir()
    shared.chmod(0o777)
    reference = tmp_path / "reference"
    reference.mkdir()
    (reference / "data.txt").write_text("reference data")
    mounts = (f"{shared}:/shared:rw", f"{reference}:/reference:ro")
    probes = [
        "/tmp/scratch.txt",
        "/dev/shm/x",
        "/shared/out.txt",
        "/reference/out.txt",
        "/app/main.py",
        "/app/new.py",
        "/etc/passwd",
        "/root/x",
        "/opt/venv/lib/python3.11/site-packages/planted.py",
        "/usr/local/bin/planted",
        "/var/tmp/x",
    ]
    async with open_docker_engine(tmp_path, worker_image, docker={"mounts": mounts}) as runtime:
        run = await run_to_end(runtime, "wf/try_writes", [probes])
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.results == [
        {
            "/tmp/scratch.txt": "written",
            "/dev/shm/x": "written",  # Docker's own 64 MB tmpfs, private to the container
            "/shared/out.txt": "written",
            "/reference/out.txt": EROFS,
            "/app/main.py": EROFS,
            "/app/new.py": EROFS,
            "/etc/passwd": EROFS,
            "/root/x": "PermissionError errno=13",  # not even searchable by this user
            "/opt/venv/lib/python3.11/site-packages/planted.py": EROFS,
            "/usr/local/bin/planted": EROFS,
            "/var/tmp/x": EROFS,
        }
    ]
    assert (shared / "out.txt").read_text() == "probe"
    written = shared / "out.txt"
    assert (written.stat().st_uid, written.stat().st_gid) == (65534, 65534)
    assert sorted(os.listdir(reference)) == ["data.txt"]


async def test_a_fork_bomb_stops_at_the_pids_limit(tmp_path: Path, worker_image: str) -> None:
    async with open_docker_engine(tmp_path, worker_image, docker={"pids_limit": 32}) as runtime:
        run = await run_to_end(runtime, "wf/fork_until_refused", [200])
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.results is not None
    started = run.results[0]
    # the limit counts the init, the worker (and its threads) too: fewer children than 32 start
    assert 10 <= started < 32, started


async def test_render1_official_worker_runs_unmodified_inside(
    tmp_path: Path, render_worker_image: str
) -> None:
    async with open_docker_engine(tmp_path, render_worker_image, start_command=RENDER1) as runtime:
        fan = await run_to_end(runtime, "wf/add_squares", [3, 4])  # two subtasks, 3 containers
        greet = await run_to_end(runtime, "wf/greet", {"name": "Ada", "greeting": "Hi"})
        failing = await run_to_end(runtime, "wf/explode", ["boom"])
    assert (fan.status, fan.results) == (RunStatus.SUCCEEDED, [25]), fan.error
    assert greet.results == ["Hi, Ada!"]
    assert failing.status is RunStatus.FAILED
    assert "boom" in (failing.error or "")


async def test_render08_official_worker_runs_unmodified_inside(
    tmp_path: Path, render_worker_image: str
) -> None:
    async with open_docker_engine(tmp_path, render_worker_image, start_command=RENDER08) as runtime:
        fan = await run_to_end(runtime, "wf/double_all", [[1, 2, 3]])
        chain = await run_to_end(runtime, "wf/chain", [5])
    assert (fan.status, fan.results) == (RunStatus.SUCCEEDED, [2, 4, 6]), fan.error
    assert chain.results == [20]
