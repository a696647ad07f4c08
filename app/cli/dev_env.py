"""`conveyor dev --env` and `--env-file`: the workflow's own variables, as a deployment has.

A task sees only its workflow's variables and a few of the host's (docs/deployment.md), so a
developer names what the local workflow needs: ``--env NAME`` (the value from the shell that runs
`conveyor dev`), ``--env-file .env`` (``NAME=VALUE`` lines, ``#`` comments, an optional ``export``
and quotes), or ``--env NAME=VALUE`` (the value is then taken out of the process's arguments:
`dev_argv`). Later sources win. Values are never printed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from app.cli.errors import CliError
from scheduler.executors.environment import variable_name_problem

_QUOTES = ('"', "'")


def workflow_variables(
    options: Iterable[str], files: Iterable[Path], shell: Mapping[str, str]
) -> dict[str, str] | None:
    """The variables `--env-file` and `--env` give, files first; None when neither was given.

    Raises:
        CliError: A bad name, a name the shell does not set, or a line a file cannot hold.
    """
    variables: dict[str, str] = {}
    given = False
    for file in files:
        given = True
        variables.update(read_env_file(file))
    for option in options:
        given = True
        name, value = _option(option, shell)
        variables[name] = value
    return variables if given else None


def _option(option: str, shell: Mapping[str, str]) -> tuple[str, str]:
    name, has_value, value = option.partition("=")
    _check_name(name, "--env")
    if has_value:
        return name, value
    if name not in shell:
        raise CliError(
            f"--env {name}: {name} is not set in this shell (export it, or use --env-file)"
        )
    return name, shell[name]


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=VALUE`` lines; blank lines and ``#`` comments skipped.

    Raises:
        CliError: The file cannot be read, or a line is not a variable.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"--env-file {path}: cannot read it: {exc}") from None
    variables: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        name, has_value, value = line.partition("=")
        name = name.strip()
        where = f"--env-file {path}, line {number}"
        if not has_value:
            raise CliError(f"{where}: expected NAME=VALUE")
        _check_name(name, where)
        variables[name] = _unquote(value.strip())
    return variables


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] in _QUOTES and value[-1] == value[0]:
        return value[1:-1]
    return value


def _check_name(name: str, where: str) -> None:
    problem = variable_name_problem(name)
    if problem is not None:
        raise CliError(f"{where}: {problem}")
