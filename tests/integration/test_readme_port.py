"""The README's first steps on another port, run as written against a real `conveyor dev`."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.dev_server import free_port, wait_healthy

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PYTHON = Path(sys.executable)
DOCUMENTED_PORT = "8975"


def sh_block_with(marker: str) -> list[str]:
    """The README's `sh` block holding `marker`, one command a line, comments dropped."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    (block,) = [b for b in blocks if marker in b]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def render_client_snippet() -> str:
    (snippet,) = [
        textwrap.dedent(b)
        for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
        if "from render import Render" in b and "RENDER_USE_LOCAL_DEV" in b
    ]
    return snippet


def environment(**extra: str) -> dict[str, str]:
    """This shell's variables, none of Conveyor's or Render's but `extra`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "RENDER_"))}
    return {**base, "PYTHONUNBUFFERED": "1", **extra}


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def started_line(log: Path, prefix: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith(prefix):
                return line
        time.sleep(0.05)
    raise AssertionError(f"no {prefix!r} line in:\n{log.read_text()}")


@pytest.fixture
def documented_dev_server(tmp_path: Path) -> Iterator[tuple[list[str], Path, str]]:
    """`CONVEYOR_PORT=<port> make dev` as the README says, on a free port instead of 8975."""
    port = str(free_port())
    lines = [line.replace(DOCUMENTED_PORT, port) for line in sh_block_with("CONVEYOR_PORT=")]
    assignment, command = lines[0].split(" ", 1)
    assert command == "make dev"
    recipe = re.search(r"^dev: .*\n\t(.+)$", (REPO / "Makefile").read_text(), flags=re.M)
    assert recipe is not None and recipe.group(1) == "$(BIN)/conveyor dev examples/hello"
    name, _, value = assignment.partition("=")
    log = tmp_path / "dev.log"
    env = environment(**{name: value}, CONVEYOR_DATA_DIR=str(tmp_path / "data"))
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(PYTHON.with_name("conveyor")), "dev", "examples/hello"],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        url = wait_healthy(process, log)
        assert url == f"http://127.0.0.1:{port}", url
        yield lines, log, url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_readme_on_another_port_runs_as_written(
    documented_dev_server: tuple[list[str], Path, str],
) -> None:
    lines, log, url = documented_dev_server
    assert started_line(log, "Conveyor dev server on ") == (
        f"Conveyor dev server on {url} (dashboard at {url}/)"
    )

    # the hint, run as printed from the folder `make dev` ran in, with no CONVEYOR_URL set
    hint = started_line(log, "Next: in another terminal, `").split("`")[1]
    cli, _, rest = hint.partition(" --url ")
    assert cli in (".venv/bin/conveyor", "conveyor")  # `conveyor` when PATH finds this one
    assert rest == f"{url} run hello/add_squares <a> <b> --wait"
    done = run(shlex.split(hint.replace("<a> <b>", "3 4")), environment())
    assert (done.returncode, done.stdout) == (0, "25\n"), done.stderr
    assert started_line(log, "Other clients: ") == (
        f"Other clients: CONVEYOR_URL={url} for the conveyor CLI and SDK client; "
        f"RENDER_USE_LOCAL_DEV=true RENDER_LOCAL_DEV_URL={url} for Render's client"
    )

    # the README's exports, then its command and Render's client
    exported: dict[str, str] = {}
    for line in lines[1:]:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            exported[name] = value
    assert exported == {"CONVEYOR_URL": url, "RENDER_LOCAL_DEV_URL": url}
    (command,) = [line for line in lines[1:] if not line.startswith("export ")]
    done = run(shlex.split(command), environment(**exported))
    assert (done.returncode, done.stdout) == (0, "25\n"), done.stderr
    done = run([str(PYTHON), "-c", render_client_snippet()], environment(**exported))
    assert (done.returncode, done.stdout) == (0, "[25]\n"), done.stderr
