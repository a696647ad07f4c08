"""`conveyor dev` builds the folder in a virtualenv and registers again when a file changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.build_fixtures import make_wheel, wait_for
from tests.integration.dev_server import dev_server

pytestmark = pytest.mark.slow

MAIN = """
import os

import tinydep
from conveyor import Workflows

app = Workflows()


@app.task
def hello() -> str:
    return f"{GREETING} {tinydep.NAME} in {os.environ['VIRTUAL_ENV']}"
"""


def run(client: httpx.Client, task: str) -> Any:
    run_id = client.post("/v1/task-runs", json={"task": task, "input": []}).json()["id"]
    done = client.get(f"/v1/task-runs/{run_id}", params={"wait": 60}).json()
    log = client.get("/v1/logs", params={"taskRun": run_id}).text
    assert done["status"] == "succeeded", (done.get("error"), log)
    return done["results"][0]


def test_dev_uses_a_virtualenv_and_reregisters_on_change(tmp_path: Path, scratch: Path) -> None:
    # the install step runs sandboxed: it sees the scratch folder (an operator mount), not
    # the rest of the test's folder
    wheel = make_wheel(scratch / "wheels", "tinydep", "1.0", "NAME = 'dep'\n")
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "requirements.txt").write_text(f"{wheel}\n")
    (folder / "main.py").write_text("GREETING = 'hello'\n" + MAIN)
    data = tmp_path / "data"
    # a wheelhouse the operator shows to build steps, as a local package index would be
    mounts = json.dumps([f"{wheel.parent}:{wheel.parent}:ro"])
    with (
        dev_server(folder, data, name="proj", env={"CONVEYOR_SANDBOX__MOUNTS": mounts}) as server,
        httpx.Client(base_url=server.url, timeout=90) as client,
    ):
        first = run(client, "proj/hello")
        assert first.startswith("hello dep in ") and str(data / "venvs") in first
        (folder / "main.py").write_text("GREETING = 'bonjour'\n" + MAIN)

        def two_ready() -> list[Any] | None:
            versions = client.get("/v1/workflowversions").json()
            ready = [v for v in versions if v["workflowVersion"]["status"] == "ready"]
            return ready if len(ready) == 2 else None

        two_ready_ids = [v["workflowVersion"]["id"] for v in wait_for("v2", two_ready, timeout=60)]
        assert run(client, "proj/hello") == first.replace("hello", "bonjour", 1)
        (folder / "main.py").write_text("raise SystemExit('broken on purpose')\n")
        wait_for(
            "the failed registration",
            lambda: "broken on purpose" in server.output() or None,
            timeout=60,
        )
        # dev runs the folder itself, so only the registration is kept, not the old code
        active = [w["workflow"].get("activeVersionId") for w in client.get("/v1/workflows").json()]
        assert active == [two_ready_ids[0]]
        assert "Reusing virtualenv" in server.output()


def test_restarting_dev_on_unchanged_code_makes_no_version(tmp_path: Path) -> None:
    folder = tmp_path / "same"
    folder.mkdir()
    (folder / "main.py").write_text(
        MAIN.replace("import tinydep\n", "").replace(
            "{GREETING} {tinydep.NAME} in {os.environ['VIRTUAL_ENV']}", "same"
        )
    )
    data = tmp_path / "data"

    def versions(url: str) -> list[str]:
        items = httpx.get(f"{url}/v1/workflowversions").json()
        return [item["workflowVersion"]["id"] for item in items]

    with dev_server(folder, data, name="same") as first:
        [version] = versions(first.url)
        assert f"Registered same version {version}: hello" in first.output()
    with dev_server(folder, data, name="same") as again:
        assert versions(again.url) == [version]
        assert f"Unchanged: same version {version} stays active: hello" in again.output()
        (folder / "main.py").write_text((folder / "main.py").read_text() + "\n# changed\n")
        wait_for("a second version", lambda: len(versions(again.url)) == 2 or None, timeout=60)
