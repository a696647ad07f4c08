"""The `conveyor` command against a live server, and `conveyor dev` as a real process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.cli.main import main
from tests.integration.api_fixtures import ApiServer, create_database, serve_api, write_workflow
from tests.integration.dev_server import wait_healthy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with serve_api(tmp_path_factory.mktemp("cli")) as state:
        yield state


def conveyor(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_run_wait_prints_result(server: ApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = conveyor(capsys, "--url", server.url, "run", "api/square", "7", "--wait")
    assert (code, out) == (0, "49\n")
    assert "succeeded" in err
    code, out, _ = conveyor(
        capsys, "--url", server.url, "run", "api/square_plus_one", "--input", '{"a": 2}', "--wait"
    )
    assert (code, out) == (0, "5\n")


def test_run_reads_arguments_by_the_parameter_types(
    server: ApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = ["--url", server.url]
    code, out, _ = conveyor(capsys, *url, "run", "api/kind_of", "42", "null", "--wait")
    assert (code, out) == (0, '["str", "NoneType"]\n')
    code, out, _ = conveyor(capsys, *url, "run", "api/kind_of", "hi", "7", "--wait")
    assert (code, out) == (0, '["str", "int"]\n')
    before = httpx.get(f"{server.url}/v1/task-runs", params={"limit": 100}).json()
    code, out, err = conveyor(capsys, *url, "run", "api/square", "three")
    assert (code, out) == (1, "")
    assert err == (
        "error: task 'api/square' cannot take this input: a: expected int, got 'three' (HTTP 400)\n"
    )
    code, _, err = conveyor(capsys, *url, "run", "api/sqare", "3")
    assert code == 1 and "not found (did you mean api/square?)" in err
    assert httpx.get(f"{server.url}/v1/task-runs", params={"limit": 100}).json() == before


def test_run_failure_exits_1(server: ApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = conveyor(capsys, "--url", server.url, "run", "api/fails", "bad", "--wait")
    assert code == 1 and out == ""
    assert err.splitlines()[-1].startswith("error: run trn-")
    assert "bad" in err.splitlines()[-1]


def test_run_timeout(server: ApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = conveyor(
        capsys, "--url", server.url, "run", "api/slow", "5", "--wait", "--timeout", "0.5"
    )
    assert code == 1
    assert "timed out" in err
    run_id = err.split("waiting for ")[1].split()[0]
    assert conveyor(capsys, "--url", server.url, "runs", "cancel", run_id)[0] == 0


def test_runs_commands(server: ApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = conveyor(capsys, "--url", server.url, "run", "api/chatty", "2")
    run_id = out.strip()
    assert code == 0 and run_id.startswith("trn-")
    httpx.get(f"{server.url}/v1/task-runs/{run_id}", params={"wait": 60}, timeout=70)
    code, out, _ = conveyor(capsys, "--url", server.url, "runs", "show", run_id, "--json")
    assert json.loads(out)["results"] == [2]
    code, out, _ = conveyor(capsys, "--url", server.url, "runs", "show", run_id)
    assert "succeeded" in out and "attempts:" in out
    code, out, _ = conveyor(capsys, "--url", server.url, "runs", "list", "--task", "api/chatty")
    assert out.splitlines()[0].split() == [
        "ID",
        "TASK",
        "STATUS",
        "ATTEMPTS",
        "CREATED",
        "DURATION",
    ]
    assert run_id in out
    code, out, _ = conveyor(capsys, "--url", server.url, "runs", "logs", run_id)
    assert "line 1" in out
    code, _, err = conveyor(capsys, "--url", server.url, "runs", "cancel", run_id)
    assert (code, err) == (0, f"{run_id} had already ended (succeeded): nothing to cancel\n")
    code, _, err = conveyor(capsys, "--url", server.url, "runs", "show", "trn-nope")
    assert code == 1 and err.startswith("error: ") and "(HTTP 404)" in err


def test_tasks_and_versions(server: ApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    url = ["--url", server.url]
    bare, listed = conveyor(capsys, *url, "tasks"), conveyor(capsys, *url, "tasks", "list")
    assert bare == listed and listed[0] == 0
    assert "api/square" in listed[1]
    code, out, _ = conveyor(capsys, *url, "tasks", "show", "api/kind_of")
    assert code == 0
    assert "The square of a." not in out
    assert "    value: str\n    maybe: int | None = null" in out
    code, out, _ = conveyor(capsys, *url, "tasks", "show", "api/square")
    assert "  The square of a.\n" in out and "    a: int" in out
    code, out, _ = conveyor(capsys, *url, "versions", "list")
    header, row = out.splitlines()[:2]
    assert header.split()[:3] == ["VERSION", "WORKFLOW", "STATUS"]
    assert row.split()[1:3] == ["api", "ready"]


def test_keys_create(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    create_database(tmp_path / "data")
    code, out, err = conveyor(
        capsys, "keys", "create", "--name", "ci", "--data-dir", str(tmp_path / "data")
    )
    assert code == 0
    assert out.startswith("cvy_")
    assert "shown only once" in err


DATABASE_COMMANDS = [
    ("workspace", "set", "--max-concurrency", "2"),
    ("workspace", "show"),
    ("keys", "list"),
    ("keys", "create", "--name", "ci"),
    ("keys", "revoke", "key-1"),
]


@pytest.mark.parametrize("argv", DATABASE_COMMANDS, ids=" ".join)
def test_database_commands_refuse_a_folder_without_a_database(
    argv: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run where no server keeps its data, they say so instead of creating a database."""
    monkeypatch.chdir(tmp_path)
    code, out, err = conveyor(capsys, *argv)
    assert code == 1
    assert out == ""
    assert err == (
        f"error: no Conveyor database in {tmp_path / '.conveyor'}: run this where the server "
        "keeps its data, or point at it with --data-dir (CONVEYOR_DATA_DIR) or "
        "CONVEYOR_DATABASE__URL\n"
    )
    assert list(tmp_path.iterdir()) == [], "nothing created"


def test_database_commands_name_a_missing_sqlite_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "elsewhere" / "conveyor.db"
    monkeypatch.setenv("CONVEYOR_DATABASE__URL", f"sqlite+aiosqlite:///{missing}")
    monkeypatch.chdir(tmp_path)
    code, _, err = conveyor(capsys, "keys", "list")
    assert code == 1
    assert err == (
        f"error: no Conveyor database at {missing} (CONVEYOR_DATABASE__URL): run this where the "
        "server keeps its data, or correct the setting\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_database_commands_change_the_servers_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the folder the server ran in, the default data dir is the server's."""
    create_database(tmp_path / ".conveyor")
    monkeypatch.chdir(tmp_path)
    code, out, _ = conveyor(capsys, "workspace", "set", "--max-concurrency", "2")
    assert (code, out) == (0, "workspace wsp-default: max concurrency 2\n")
    code, out, _ = conveyor(capsys, "workspace", "show")
    assert code == 0 and json.loads(out)["maxConcurrency"] == 2


@pytest.mark.slow
def test_dev_serves_render_clients_and_stops_cleanly(tmp_path: Path) -> None:
    folder = write_workflow(tmp_path / "hello")
    conveyor_bin = Path(sys.executable).parent / "conveyor"
    log = tmp_path / "dev.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(conveyor_bin), "dev", str(folder), "--port", "0"],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        url = wait_healthy(process, log, timeout=90)
        response = httpx.post(f"{url}/v1/task-runs", json={"task": "hello/square", "input": [4]})
        assert response.status_code == 202  # no key needed on loopback dev
        run = httpx.get(
            f"{url}/v1/task-runs/{response.json()['id']}", params={"wait": 60}, timeout=70
        ).json()
        assert run["results"] == [16]
        assert (folder / ".conveyor").is_dir()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    err = log.read_text()
    assert process.returncode == 0, err
    assert f"Conveyor dev server on {url}" in err
    assert "square" in err
    # the hint names a conveyor that runs as printed from the folder `conveyor dev` ran in
    hint = err.split("Next: in another terminal, `", 1)[1].split("`", 1)[0].split()
    assert hint[1:] == ["--url", url, "run", "hello/kind_of", "<value>", "--wait"]
    assert Path(shutil.which(hint[0]) or hint[0]).resolve() == conveyor_bin.resolve()


def test_dev_on_a_busy_port_fails_fast_with_a_hint(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        folder = write_workflow(tmp_path / "wf")
        done = subprocess.run(
            [
                str(Path(sys.executable).with_name("conveyor")),
                "dev",
                str(folder),
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"error: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr
    assert "Registering" not in done.stderr, "fails before doing any work"
