"""`conveyor run` argument parsing and the CLI's error line."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import click
import pytest

from app.cli import dev
from app.cli.args import parse_arg, parse_typed_arg, run_input
from app.cli.main import main
from app.cli.output import result_value, table
from app.cli.runs import progress_line


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7", 7),
        ("-1.5", -1.5),
        ('"x"', "x"),
        ("x", "x"),
        ("true", True),
        ("null", None),
        ("[1, 2]", [1, 2]),
        ('{"a": 1}', {"a": 1}),
        ("hello world", "hello world"),
        ("", ""),
    ],
)
def test_parse_arg(text: str, value: Any) -> None:
    assert parse_arg(text) == value


INT = {"type": "integer"}
STR = {"type": "string"}
OPTIONAL_STR = {"anyOf": [STR, {"type": "null"}]}


@pytest.mark.parametrize(
    ("text", "schema", "value"),
    [
        ("42", STR, "42"),
        ("true", STR, "true"),
        ('"quoted"', STR, "quoted"),
        ("42", INT, 42),
        ("three", INT, "three"),  # sent as is: the server refuses it with its message
        ("3.5", INT, 3.5),
        ("null", OPTIONAL_STR, None),
        ("[1, 2]", {"type": "array", "items": INT}, [1, 2]),
        ("[1, 2]", STR, "[1, 2]"),
        ("red", {"enum": ["red", "green"], "type": "string"}, "red"),
        ("7", {}, 7),
        ("7", None, 7),  # no schema (Render's SDK): JSON when it parses
        ("x", None, "x"),
    ],
)
def test_parse_typed_arg(text: str, schema: dict[str, Any] | None, value: Any) -> None:
    assert parse_typed_arg(text, schema) == value


def test_run_input_sources(tmp_path: Path) -> None:
    assert run_input(("7", "x"), None, None) == [7, "x"]
    assert run_input((), None, None) == []
    assert run_input((), '{"a": 1}', None) == {"a": 1}
    file = tmp_path / "input.json"
    file.write_text("[1, 2]")
    assert run_input((), None, file) == [1, 2]


@pytest.mark.parametrize(
    ("args", "input_json"), [(("1",), "[1]"), ((), "7"), ((), "{bad"), ((), '"s"')]
)
def test_run_input_usage_errors(args: tuple[str, ...], input_json: str) -> None:
    with pytest.raises(click.UsageError):
        run_input(args, input_json, None)


def test_result_value_unwraps_one_element() -> None:
    assert result_value({"results": [49]}) == 49
    assert result_value({"results": [1, 2]}) == [1, 2]
    assert result_value({"results": []}) == []


def test_progress_line() -> None:
    run = {"id": "trn-1", "status": "running", "attempts": [{"attempt": 0}], "waiting": True}
    assert progress_line(run) == "trn-1 running (attempt #0), waiting on children"
    assert progress_line({"id": "trn-1", "status": "pending"}) == "trn-1 pending"


def test_table_aligns() -> None:
    assert table(["A", "BB"], [["xxx", "y"]]) == "A    BB\nxxx  y"


def run_main(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    code = exit_info.value.code
    return code if isinstance(code, int) else 1


def test_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["runs", "list", "--limit", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert run_main(["--url", "http://127.0.0.1:9", "runs", "show", "trn-1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the Conveyor server at http://127.0.0.1:9")
    assert run_main(["dev", str(Path.cwd()), "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert run_main(["--help"]) == 0


def test_progress_lines_number_attempts_as_the_api_does() -> None:
    attempts = [{"attempt": 0}, {"attempt": 1}]
    assert progress_line({"id": "trn-1", "status": "running", "attempts": attempts}) == (
        "trn-1 running (attempt #1)"
    )
    assert progress_line({"id": "trn-1", "status": "pending", "attempts": attempts[:1]}) == (
        "trn-1 pending (retry after attempt #0)"
    )
    assert progress_line({"id": "trn-1", "status": "pending", "attempts": []}) == "trn-1 pending"


@pytest.mark.parametrize(
    ("url", "command"),
    [
        ("http://127.0.0.1:8120", "conveyor"),
        ("http://127.0.0.1:8975", "conveyor --url http://127.0.0.1:8975"),
        ("http://localhost:8120", "conveyor --url http://localhost:8120"),
        ("http://[::1]:8120", "conveyor --url http://[::1]:8120"),
    ],
)
def test_the_dev_hint_names_the_server_unless_it_is_the_default(
    url: str, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dev, "cli_path", lambda: "conveyor")
    assert dev.cli_command(url) == command


def test_the_served_url_is_the_bound_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert dev.served_url("127.0.0.1", sock) == f"http://127.0.0.1:{port}"
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        port = sock.getsockname()[1]
        assert dev.served_url("::1", sock) == f"http://[::1]:{port}"
