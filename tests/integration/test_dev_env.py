"""`conveyor dev --env/--env-file`: the workflow's own variables reach its tasks, nothing else of
the developer's shell does, values are never printed, and bad input is refused before serving."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.dev_server import CONVEYOR, dev_server

pytestmark = pytest.mark.slow

MAIN = """
import os

from conveyor import Workflows

app = Workflows()


@app.task
def env() -> dict[str, str]:
    return dict(os.environ)
"""


def task_environment(url: str) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=90) as client:
        run_id = client.post("/v1/task-runs", json={"task": "envs/env", "input": []}).json()["id"]
        done = client.get(f"/v1/task-runs/{run_id}", params={"wait": 60}).json()
        assert done["status"] == "succeeded", done
        result: dict[str, Any] = done["results"][0]
        return result


def versions(url: str) -> list[str]:
    items = httpx.get(f"{url}/v1/workflowversions").json()
    return [item["workflowVersion"]["id"] for item in items]


def test_variables_from_options_files_and_the_shell(tmp_path: Path) -> None:
    folder = tmp_path / "envs"
    folder.mkdir()
    (folder / "main.py").write_text(MAIN)
    dotenv = tmp_path / "dev.env"
    dotenv.write_text(
        "# the developer's file\nexport FROM_FILE='file value'\n\nOVERRIDDEN=\"from the file\"\n"
    )
    shell = {"API_TOKEN": "token-from-the-shell", "NOT_PASSED": "shell-only-secret"}
    options = (
        f"--env-file={dotenv}",
        "--env=API_TOKEN",
        "--env=OVERRIDDEN=from the option",
        "--env=EMPTY=",
    )
    data = tmp_path / "data"
    with dev_server(folder, data, name="envs", extra=options, env=shell) as server:
        env = task_environment(server.url)
        [version] = versions(server.url)
        output = server.output()
    assert env["FROM_FILE"] == "file value"
    assert env["API_TOKEN"] == "token-from-the-shell"
    assert env["OVERRIDDEN"] == "from the option"
    assert env["EMPTY"] == ""
    assert "NOT_PASSED" not in env
    assert "Workflow variables: API_TOKEN, EMPTY, FROM_FILE, OVERRIDDEN" in output
    for value in ("file value", "token-from-the-shell", "from the option"):
        assert value not in output

    # the same variables again keep the version; without --env the stored ones stay
    with dev_server(folder, data, name="envs", extra=options, env=shell) as again:
        assert versions(again.url) == [version]
    with dev_server(folder, data, name="envs") as plain:
        assert versions(plain.url) == [version]
        assert task_environment(plain.url)["API_TOKEN"] == "token-from-the-shell"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--env=UNSET_IN_THIS_SHELL", "--env UNSET_IN_THIS_SHELL: UNSET_IN_THIS_SHELL is not set"),
        ("--env=1BAD=x", "--env: '1BAD' is not a variable name"),
        ("--env=CONVEYOR_DATABASE__URL=x", "--env: 'CONVEYOR_DATABASE__URL' is reserved"),
        ("--env=RENDER_SDK_MODE=run", "--env: 'RENDER_SDK_MODE' is reserved"),
    ],
)
def test_bad_variables_are_refused_before_serving(
    tmp_path: Path, option: str, message: str
) -> None:
    done = subprocess.run(
        [CONVEYOR, "dev", str(tmp_path), "--data-dir", str(tmp_path / "data"), option],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert f"error: {message}" in done.stderr, done.stderr
    assert not (tmp_path / "data").exists()


def test_a_bad_env_file_line_names_its_file_and_line(tmp_path: Path) -> None:
    dotenv = tmp_path / "broken.env"
    dotenv.write_text("GOOD=1\nthis is not a variable\n")
    done = subprocess.run(
        [CONVEYOR, "dev", str(tmp_path), f"--env-file={dotenv}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert f"error: --env-file {dotenv}, line 2: expected NAME=VALUE" in done.stderr


HOLDING = """
import os
import time

from conveyor import Workflows

app = Workflows()


@app.task
def secret_length(seconds: float) -> int:
    time.sleep(seconds)  # long enough to look at every process while it runs
    return len(os.environ["SECRET_TOKEN"])
"""


def process_tree(root: int) -> set[int]:
    """`root` and every process below it, from /proc's parent links."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    tree = {root}
    while grown := {pid for pid, parent in parents.items() if parent in tree} - tree:
        tree |= grown
    return tree


def read_proc(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""  # ended meanwhile, or not ours to read


def test_an_inline_value_leaves_every_process_command_line(tmp_path: Path) -> None:
    folder = tmp_path / "holding"
    folder.mkdir()
    (folder / "main.py").write_text(HOLDING)
    secret = "tok-7f3a9c2e51d84b06"
    with dev_server(
        folder, tmp_path / "data", name="holding", extra=("--env", f"SECRET_TOKEN={secret}")
    ) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            task = {"task": "holding/secret_length", "input": [3]}
            run_id = client.post("/v1/task-runs", json=task).json()["id"]
            deadline = time.monotonic() + 30
            while client.get(f"/v1/task-runs/{run_id}").json()["status"] != "running":
                assert time.monotonic() < deadline, "the run never started"
                time.sleep(0.05)
            tree = process_tree(server.process.pid)
            command_lines = {pid: read_proc(pid, "cmdline") for pid in tree}
            everyone = [read_proc(int(p.name), "cmdline") for p in Path("/proc").glob("[0-9]*")]
            own_environment = read_proc(server.process.pid, "environ")
            done = client.get(f"/v1/task-runs/{run_id}", params={"wait": 30}).json()
        output = server.output()
    assert done["status"] == "succeeded" and done["results"] == [len(secret)], done
    assert len(tree) >= 2, command_lines  # conveyor dev and at least the running worker
    assert b"--env\x00SECRET_TOKEN\x00" in command_lines[server.process.pid]
    assert all(secret.encode() not in line for line in command_lines.values()), command_lines
    assert all(secret.encode() not in line for line in everyone)
    assert secret.encode() not in own_environment  # not moved to the environment either
    assert "warning: --env NAME=VALUE puts the value of SECRET_TOKEN in your shell's" in output
    assert secret not in output
