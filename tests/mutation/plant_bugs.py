"""Plants the six one-line bugs that once slipped through, one at a time, and names the tests that
fail on each (`make plant-bugs`).

Each bug is planted in a temporary copy of the working tree, never in the tree itself; the copy
is checked first to pass the same tests unchanged. A bug whose text is no longer in the code
stops the script: the list below must follow the code it plants into.

    python -m tests.mutation.plant_bugs            # all six
    python -m tests.mutation.plant_bugs retry      # one, by the start of its name
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COPIED = ("app", "core", "scheduler", "builder", "sdk", "tests", "pyproject.toml")
_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Bug:
    name: str
    path: str
    before: str
    after: str
    tests: tuple[str, ...]


BUGS: tuple[Bug, ...] = (
    Bug(
        "retry backoff: factor ** retry_number (off by one)",
        "core/domain.py",
        "self.factor ** max(retry_number - 1, 0)",
        "self.factor ** retry_number",
        ("tests/unit/core/test_retry_delays.py",),
    ),
    Bug(
        "cross-site guard: the Origin's host name is not compared",
        "app/api/request_guard.py",
        "        if origin_name != name:\n            return False\n",
        "",
        ("tests/unit/app/test_request_guard_rules.py", "tests/unit/app/test_request_guard.py"),
    ),
    Bug(
        "task environment: SSH_AUTH_SOCK joins the host variables",
        "scheduler/executors/environment.py",
        '    "TMPDIR",\n)',
        '    "TMPDIR",\n    "SSH_AUTH_SOCK",\n)',
        ("tests/unit/scheduler/test_environment_rules.py",),
    ),
    Bug(
        "task environment: the pass_env validator for CONVEYOR_ names is gone",
        "core/settings.py",
        '    @field_validator("pass_env")\n',
        "",
        ("tests/unit/scheduler/test_environment_rules.py",),
    ),
    Bug(
        "cancel cascade: stops below depth 2",
        "scheduler/runs/transitions.py",
        "            frontier.extend(conn.execute(_LIVE_CHILDREN",
        "            if run.parent_id is None or run.parent_id == run.root_id:\n"
        "                frontier.extend(conn.execute(_LIVE_CHILDREN",
        (
            "tests/integration/test_engine_cancel_depth.py::"
            "test_cancelling_the_root_cancels_every_level[sqlite]",
        ),
    ),
    Bug(
        "run list: the status filter is ignored",
        "scheduler/runs/reads.py",
        "    if run_filter.status:\n",
        "    if False:\n",
        ("tests/integration/test_api_run_filters.py",),
    ),
)


def copy_tree(destination: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache")
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        else:
            shutil.copy2(source, destination / name)


def plant(bug: Bug, root: Path) -> None:
    path = root / bug.path
    text = path.read_text()
    found = text.count(bug.before)
    if found != 1:
        raise SystemExit(
            f"{bug.name}: {bug.before!r} occurs {found} times in {bug.path}, not once; "
            "update the bug to follow the code"
        )
    path.write_text(text.replace(bug.before, bug.after))


def failing_tests(root: Path, tests: tuple[str, ...]) -> tuple[int, list[str]]:
    """pytest's exit code on the copy, and the tests it reports failed."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", *tests]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    return done.returncode, _FAILED.findall(done.stdout)


def main(argv: list[str] | None = None) -> int:
    wanted = (argv if argv is not None else sys.argv[1:]) or [""]
    bugs = [bug for bug in BUGS if any(bug.name.startswith(w) for w in wanted)]
    if not bugs:
        print(f"no such bug; bugs: {'; '.join(bug.name for bug in BUGS)}")
        return 2
    uncaught = 0
    with tempfile.TemporaryDirectory(prefix="conveyor-bugs-") as scratch:
        clean = Path(scratch) / "clean"
        copy_tree(clean)
        every_test = tuple(dict.fromkeys(test for bug in bugs for test in bug.tests))
        code, failed = failing_tests(clean, every_test)
        if code != 0:
            print(f"the unchanged copy fails its tests ({code}): {failed}")
            return 2
        print(f"unchanged copy: {len(every_test)} test file(s) pass\n")
        for bug in bugs:
            planted = Path(scratch) / re.sub(r"[^a-z0-9]+", "-", bug.name.lower())[:40]
            shutil.copytree(clean, planted)
            plant(bug, planted)
            code, failed = failing_tests(planted, bug.tests)
            caught = code == 1 and bool(failed)
            uncaught += not caught
            print(f"{'CAUGHT' if caught else 'MISSED'}  {bug.name}  ({bug.path})")
            for test in failed[:8]:
                print(f"    fails: {test}")
            if len(failed) > 8:
                print(f"    ... and {len(failed) - 8} more")
            if not caught and code != 0:
                print(f"    pytest exited {code} without a failed test: not counted as caught")
            shutil.rmtree(planted)
    print(f"\n{len(bugs) - uncaught} of {len(bugs)} planted bugs make a test fail")
    return 1 if uncaught else 0


if __name__ == "__main__":
    sys.exit(main())
