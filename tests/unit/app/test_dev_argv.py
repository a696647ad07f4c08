"""`conveyor dev --env NAME=VALUE`: values cut out of the arguments, passed by an inherited fd."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.cli.dev_argv import (
    _anonymous_file,
    inline_warning,
    read_values,
    split_inline_values,
    with_values_fd,
)


def test_inline_values_are_cut_out_in_both_spellings() -> None:
    args = [
        "dev",
        ".",
        "--env",
        "TOKEN=s3cr=et",
        "--env=EMPTY=",
        "--env",
        "FROM_SHELL",
        "--env=ALSO_SHELL",
        "--env-file=.env",
        "--env-file",
        "x.env",
        "--name",
        "wf",
    ]
    kept, values = split_inline_values(args)
    assert kept == [
        "dev",
        ".",
        "--env",
        "TOKEN",
        "--env=EMPTY",
        "--env",
        "FROM_SHELL",
        "--env=ALSO_SHELL",
        "--env-file=.env",
        "--env-file",
        "x.env",
        "--name",
        "wf",
    ]
    assert values == {"TOKEN": "s3cr=et", "EMPTY": ""}


def test_the_last_value_of_a_name_wins_and_nothing_after_a_double_dash_is_touched() -> None:
    kept, values = split_inline_values(["--env", "A=1", "--env=A=2", "--", "--env", "B=3"])
    assert kept == ["--env", "A", "--env=A", "--", "--env", "B=3"]
    assert values == {"A": "2"}
    assert split_inline_values(["dev", "--env"]) == (["dev", "--env"], {})  # click refuses it


def test_the_fd_option_stays_an_option() -> None:
    assert with_values_fd(["dev", "."], 7) == ["dev", ".", "--env-values-fd", "7"]
    assert with_values_fd(["dev", "--", "-odd-path"], 7) == [
        "dev",
        "--env-values-fd",
        "7",
        "--",
        "-odd-path",
    ]


def test_the_warning_names_never_values() -> None:
    assert inline_warning(["TOKEN", "API_KEY", "TOKEN"]) == (
        "warning: --env NAME=VALUE puts the value of API_KEY, TOKEN in your shell's history, and "
        "in the process list until `conveyor dev` restarts itself without it; use --env NAME "
        "(its value from the environment) or --env-file instead"
    )


def test_values_reach_a_new_program_through_the_inherited_file() -> None:
    values = {"TOKEN": "v" * 200_000, "EMPTY": ""}  # past a pipe's buffer
    fd = _anonymous_file(json.dumps(values).encode())
    try:
        assert os.get_inheritable(fd)
        target = os.readlink(f"/proc/self/fd/{fd}")
        assert target.startswith(("/memfd:", "/tmp")) and "(deleted)" in target
        code = (
            "import sys, json; from app.cli.dev_argv import read_values; "
            "print(json.dumps(read_values(int(sys.argv[1]))))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(fd)],
            pass_fds=(fd,),
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.close(fd)
    assert json.loads(done.stdout) == values


def test_read_values_closes_its_fd() -> None:
    fd = _anonymous_file(b'{"A": "1"}')
    assert read_values(fd) == {"A": "1"}
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)
