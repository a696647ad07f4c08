"""`conveyor dev --env/--env-file`: the workflow's own variables reach its tasks, nothing else of
the developer's shell does, values are never printed, and bad input is refused before serving."""

from __future__ import annotations

import subprocess
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
