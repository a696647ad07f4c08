"""The sandbox when the control plane is a regular user (a developer's laptop): user namespaces
give the same walls. `conveyor dev` runs here as `nobody`, with Debian's own interpreter and the
project's packages on its path; a task probes it as an attacker would."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.dev_server import wait_healthy
from tests.integration.engine_fixtures import WORKFLOWS

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
NOBODY = 65534
PLANTED = "planted-secret-7f3a9c"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not SYSTEM_PYTHON.exists(),
    reason="needs root to start the control plane as another user, and Debian's python3",
)


def readable_by_anyone(path: Path) -> bool:
    return all(os.stat(part).st_mode & 0o005 for part in (path, *path.parents))


@pytest.fixture(params=["forked", "spawned"])
def unprivileged_dev(request: pytest.FixtureRequest) -> Iterator[tuple[str, Path]]:
    """`conveyor dev` of the sandbox workflow, as nobody: its URL and data folder (in a folder
    of its own under /tmp: pytest's are the test runner's alone); attempts forked from a zygote
    or spawned."""
    tmp_path = Path(tempfile.mkdtemp(prefix="conveyor-unprivileged-"))
    try:
        yield from _unprivileged_dev(tmp_path, zygote=request.param == "forked")
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _unprivileged_dev(tmp_path: Path, *, zygote: bool) -> Iterator[tuple[str, Path]]:
    site_packages = Path(sysconfig.get_paths()["purelib"])
    for needed in (REPO, site_packages):
        if not readable_by_anyone(needed):
            pytest.skip(f"{needed} is not readable by other users")
    home = tmp_path / "home"
    bin_dir = home / "bin"
    bin_dir.mkdir(parents=True)
    worker = bin_dir / "conveyor-worker"
    worker.write_text(
        f"#!{SYSTEM_PYTHON}\nimport sys\nfrom conveyor._worker_cli import main\n"
        "if __name__ == '__main__':\n    sys.exit(main())\n"
    )
    worker.chmod(0o755)
    workflow = shutil.copytree(WORKFLOWS / "sandbox", home / "wf")
    data_dir = home / "data"
    tmp_path.chmod(0o755)
    shutil.chown(home, NOBODY, NOBODY)
    for parent, folders, files in os.walk(home):
        for name in (*folders, *files):
            os.lchown(os.path.join(parent, name), NOBODY, NOBODY)
    python_path = os.pathsep.join([str(REPO), str(REPO / "sdk"), str(site_packages)])
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONPATH": python_path,
        "CONVEYOR_EXECUTOR__PASS_ENV": '["PYTHONPATH"]',
        "CONVEYOR_EXECUTOR__ZYGOTE": "true" if zygote else "false",
        "CONVEYOR_PLANTED_TOKEN": PLANTED,  # as a database password would be
        "AWS_SECRET_ACCESS_KEY": PLANTED,
    }
    argv = [
        str(SYSTEM_PYTHON),
        "-c",
        "import sys; from app.cli.main import main; sys.argv[0] = 'conveyor'; main()",
        "dev",
        str(workflow),
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--name",
        "wf",
        "--start-command",
        f"{worker} main:app",
    ]
    log = tmp_path / "dev.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv,
            cwd=home,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
        )
    try:
        url = wait_healthy(process, log, timeout=120)
        yield url, data_dir
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(log.read_text(errors="replace")[-3000:], file=sys.stderr)


def run(url: str, task: str, input: list[object]) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    created = httpx.post(
        f"{url}/v1/task-runs", json={"task": task, "input": input}, headers=headers
    )
    assert created.status_code == 202, created.text
    run_id = created.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        details = httpx.get(f"{url}/v1/task-runs/{run_id}", params={"wait": 10}, timeout=20).json()
        if details["status"] in ("succeeded", "failed", "canceled"):
            return dict(details)
    raise AssertionError(f"{task} did not end")


def server_pid(url: str, data_dir: Path) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"app.cli.main" in cmdline and str(data_dir).encode() in cmdline:
                return int(entry.name)
    raise AssertionError("the server's process is not found")


def test_a_task_of_an_unprivileged_control_plane_reaches_neither_it_nor_other_runs(
    unprivileged_dev: tuple[str, Path],
) -> None:
    url, data_dir = unprivileged_dev
    pid = server_pid(url, data_dir)
    assert os.stat(f"/proc/{pid}").st_uid == NOBODY, "the control plane runs as a regular user"
    targets = {
        "server_pid": str(pid),
        "data_dir": str(data_dir),
        "victim_socket": "/nonexistent",
    }
    details = run(url, "wf/probe", [targets])
    assert details["status"] == "succeeded", details.get("error")
    results = details["results"]
    assert isinstance(results, list)
    facts: dict[str, str] = results[0]
    assert PLANTED not in str(details)
    for name in ("server_environ", "signal_server", "data_dir", "database", "other_environs"):
        assert facts[name].startswith("refused"), (name, facts[name])
    for name in ("write_cwd", "write_usr", "write_root"):
        assert facts[name].startswith("refused"), (name, facts[name])
    assert facts["write_tmp"].startswith("allowed")
    assert int(facts["uid"]) == NOBODY  # its own user namespace maps it to itself
