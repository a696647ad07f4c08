"""What a zygote imports before it forks: each attempt would otherwise import it again."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# what a run of a Conveyor task imports between its fork and its result (found with strace:
# each was read from disk by every attempt until it was imported in the zygote; `_uds_async` by
# every run of an async task or of one with children, compiled from source each time where the
# SDK's folder has no bytecode cache and the sandbox cannot write one)
PER_RUN = [
    "conveyor._worker",
    "conveyor._uds",
    "conveyor._uds_async",
    "conveyor._inputs",
    "conveyor._input_check",
]


def _printed(script: str, *args: str) -> object:
    """What `script`, run by a fresh interpreter with `args`, printed (as JSON)."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def test_the_zygote_imports_what_every_run_of_a_conveyor_task_needs() -> None:
    script = (
        "import json, sys, conveyor\n"
        "from conveyor import _zygote\n"
        "_zygote._warm_up()\n"
        f"print(json.dumps({{m: m in sys.modules for m in {PER_RUN!r}}}))\n"
    )
    assert _printed(script) == dict.fromkeys(PER_RUN, True)


LOOKUP_AFTER = """
import importlib.metadata, json, os, sys
import render
from conveyor import _zygote
if sys.argv[1] == "warm":
    _zygote._warm_up()
listed = []
real = os.listdir
os.listdir = lambda path=".": listed.append(path) or real(path)
importlib.metadata.version("render")  # what Render's SDK does for each request's User-Agent
print(json.dumps([p for p in listed if os.path.isdir(p) and p != "."]))
"""


def test_a_run_of_render_s_sdk_finds_its_version_without_scanning_sys_path() -> None:
    def folders_listed(mode: str) -> list[str]:
        """The folders of sys.path a lookup lists (the current one aside: it is looked at
        every time, and holds nothing here)."""
        listed = _printed(LOOKUP_AFTER, mode)
        assert isinstance(listed, list)
        return [str(p) for p in listed]

    assert any(p.endswith("site-packages") for p in folders_listed("cold")), "a first lookup"
    assert folders_listed("warm") == []


VERSION_AFTER = """
import importlib, importlib.metadata, json, sys
sdk = sys.argv[1]
importlib.import_module(sdk)
from conveyor import _zygote
installed = importlib.metadata.version(sdk)
_zygote._warm_up()
def refuse(name):
    raise AssertionError(f"metadata of {name} read again")
importlib.metadata.version = refuse
agent = importlib.import_module(sdk + ".version").get_user_agent()
print(json.dumps([installed, agent]))
"""


@pytest.mark.parametrize("sdk", ["render", "render_sdk"])
def test_a_run_of_render_s_sdk_does_not_read_its_metadata_again(sdk: str) -> None:
    pytest.importorskip(sdk)
    printed = _printed(VERSION_AFTER, sdk)
    assert isinstance(printed, list)
    installed, agent = printed
    assert agent.startswith(f"render-sdk-python/{installed} (")
