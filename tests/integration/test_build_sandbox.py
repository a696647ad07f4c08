"""A tenant's build command runs sandboxed: it probes the server as an attacker would, and its
build log — which the tenant reads over the API — shows every probe refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.build_fixtures import (
    GitRemote,
    build_settings,
    make_remote,
    serve_builds,
    wait_build,
)

WORKFLOW = """
from conveyor import Workflows

app = Workflows()


@app.task
def t() -> int:
    return 1
"""

PROBE = r"""
import glob, os, sys

server, data = int(sys.argv[1]), sys.argv[2]


def attempt(name, action):
    try:
        result = action()
    except Exception as exc:
        print(f"PROBE {name} refused {type(exc).__name__}")
    else:
        print(f"PROBE {name} allowed {result}")


def write(path):
    with open(path, "w") as handle:
        handle.write("x")


attempt("server_environ", lambda: open(f"/proc/{server}/environ", "rb").read())
attempt("signal_server", lambda: os.kill(server, 0))
attempt("data_dir", lambda: ",".join(sorted(os.listdir(data))))
attempt("database", lambda: open(os.path.join(data, "conveyor.db"), "rb").read(16))
attempt("checkouts", lambda: ",".join(os.listdir(os.path.join(data, "checkouts"))))
attempt("secrets_key", lambda: open(os.path.join(data, "secrets.key"), "rb").read())
attempt("write_data_dir", lambda: write(os.path.join(data, "planted")))
attempt("write_usr", lambda: write("/usr/planted"))
mine = os.getpid()
others = [p for p in glob.glob("/proc/[0-9]*/environ") if p.split("/")[2] != str(mine)]
readable = []
for path in others:
    try:
        text = open(path, "rb").read()
    except OSError:
        continue
    if b"CONVEYOR_" in text or b"SECRET" in text:
        readable.append(path)
print(f"PROBE other_environs {'allowed' if readable else 'refused'} {readable}")
attempt("write_source", lambda: write("built.txt"))
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    settings = build_settings(tmp_path / "data", "http://127.0.0.1:9", "unused")
    settings = settings.model_copy(
        update={"github": settings.github.model_copy(update={"app_id": None})}
    )
    with serve_builds(settings) as server, server.client() as client:
        yield client, settings.data_dir.resolve()


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    remote = make_remote(tmp_path)
    remote.commit({"main.py": WORKFLOW, "probe.py": PROBE}, "init")
    return remote


def test_a_build_command_reaches_neither_the_server_nor_other_workflows(
    client: tuple[httpx.Client, Path], remote: GitRemote
) -> None:
    http, data_dir = client
    command = f"python probe.py {os.getpid()} {data_dir}"
    first = http.post("/v1/workflows", json={"name": "first", "repo": remote.url}).json()
    build = wait_build(http, http.post(f"/v1/workflows/{first['id']}/deploy", json={}).json()["id"])
    assert build["status"] == "succeeded"
    attacker = http.post(
        "/v1/workflows", json={"name": "attacker", "repo": remote.url, "buildCommand": command}
    ).json()
    started = http.post(f"/v1/workflows/{attacker['id']}/deploy", json={})
    build = wait_build(http, started.json()["id"])
    log = http.get(f"/v1/builds/{build['id']}/logs").text
    assert build["status"] == "succeeded", log
    probes = dict(line.split(" ", 2)[1:] for line in log.splitlines() if line.startswith("PROBE "))
    # the folders it builds are shown at their own paths: the data folder holds nothing else
    assert probes.pop("data_dir") == "allowed checkouts,venvs", log
    own_checkout = f"allowed {attacker_version(http, attacker['id'])}"
    assert probes.pop("checkouts") == own_checkout, log
    wanted = {
        "server_environ",
        "signal_server",
        "database",
        "secrets_key",
        "write_data_dir",
        "write_usr",
        "other_environs",
        "write_source",
    }
    assert set(probes) == wanted, log
    outcomes = {name: result.split()[0] for name, result in probes.items()}
    assert outcomes == {
        **dict.fromkeys(wanted - {"write_source"}, "refused"),
        "write_source": "allowed",
    }
    assert not (data_dir / "planted").exists()


def attacker_version(http: httpx.Client, workflow_id: str) -> str:
    builds = http.get("/v1/builds", params={"workflowId": workflow_id}).json()
    return str(builds[0]["build"]["workflowVersionId"])
