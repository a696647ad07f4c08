"""The README's code and commands stay true."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

README = Path(__file__).parents[3] / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def test_the_tour_example_runs_in_process() -> None:
    namespace: dict[str, Any] = {}
    exec(_blocks("python")[0], namespace)
    assert asyncio.run(namespace["add_squares"](3, 4)) == 25
    assert namespace["square"](5) == 25


def test_set_up_is_two_make_commands() -> None:
    commands = [line.split("#")[0].strip() for line in _blocks("sh")[0].splitlines()]
    assert [c for c in commands if c] == ["make dev", "make test"]
    makefile = (README.parent / "Makefile").read_text()
    assert "conveyor dev examples/hello" in makefile
    assert re.search(r"^test: .*\n\t\$\(BIN\)/pytest$", makefile, flags=re.M)
