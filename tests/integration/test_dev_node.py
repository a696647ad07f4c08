"""`conveyor dev` on examples/hello-ts: installs once, builds with the package's build script,
registers, and on each edit of a `.ts` file rebuilds and registers once (the `.js` the build
writes is not a change of its own)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.build_fixtures import wait_for
from tests.integration.dev_server import dev_server
from tests.integration.node_fixtures import (
    VENDORED,
    render_sdk_tarball,
    requires_render_ts_sdk,
)

pytestmark = [pytest.mark.slow, requires_render_ts_sdk]

EXAMPLE = Path(__file__).parents[2] / "examples" / "hello-ts"


def hello_ts(folder: Path) -> Path:
    """The example, its `@renderinc/sdk` taken from the vendored tarball (not in the registry
    these machines reach)."""
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("node_modules", "dist"))
    tarball = render_sdk_tarball()
    assert tarball is not None
    (folder / VENDORED).parent.mkdir()
    shutil.copy(tarball, folder / VENDORED)
    package = json.loads((folder / "package.json").read_text())
    package["dependencies"]["@renderinc/sdk"] = f"file:{VENDORED}"
    (folder / "package.json").write_text(json.dumps(package, indent=2))
    return folder


def run(client: httpx.Client, task: str, input: list[Any]) -> Any:
    created = client.post("/v1/task-runs", json={"task": task, "input": input})
    assert created.status_code == 202, created.text
    run_id = created.json()["id"]
    done = client.get(f"/v1/task-runs/{run_id}", params={"wait": 60}).json()
    assert done["status"] == "succeeded", done
    return done["results"][0]


def ready_versions(client: httpx.Client) -> list[dict[str, Any]]:
    versions = client.get("/v1/workflowversions").json()
    return [v["workflowVersion"] for v in versions if v["workflowVersion"]["status"] == "ready"]


def test_dev_builds_a_typescript_folder_and_registers_once_per_edit(tmp_path: Path) -> None:
    folder = hello_ts(tmp_path / "hello-ts")
    source = folder / "src" / "main.ts"
    with (
        dev_server(folder, tmp_path / "data", name="hello-ts", ready_timeout=300) as server,
        httpx.Client(base_url=server.url, timeout=90) as client,
    ):
        output = server.output()
        assert "with the start script of its package.json" in output
        # the steps of the first build are shown as they start (its install can take minutes)
        assert re.search(r"==> \[1/3\] \S+ installing node_modules with npm", output), output
        assert "run hello-ts/add_squares <arguments…> --wait" in output
        assert "Installed" in output and (folder / "node_modules" / ".bin" / "tsc").exists()
        assert run(client, "hello-ts/add_squares", [3, 4]) == 25
        assert run(client, "hello-ts/greet", ["Ada"]) == "hello, Ada!"

        before = "hello"
        for count, greeting in enumerate(("bonjour", "hallo"), start=2):
            text = source.read_text()
            source.write_text(text.replace(f'"{before}"', f'"{greeting}"'))
            before = greeting

            def registered(expected: int = count) -> bool | None:
                return len(ready_versions(client)) == expected or None

            wait_for(f"version {count}", registered)
            assert run(client, "hello-ts/greet", ["Ada"]) == f"{greeting}, Ada!"

        changes = [line for line in server.output().splitlines() if line.startswith("Changed:")]
        # one registration per edit: the compiled dist/main.js is the build's, not an edit
        assert changes == ["Changed: main.ts — registering again …"] * 2, server.output()
        assert len(ready_versions(client)) == 3
        # node_modules was installed once, for the first build
        assert server.output().count("Installed") == 1
        assert server.output().count("Using") == 2
