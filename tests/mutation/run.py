"""`make mutate`: mutmut over the modules that guard tenants and money, scored per module.

All targets run as one mutmut run in build/mutation/all (or quick/), where the sources are
linked, not changed, under a `[tool.mutmut]` section naming the targets' files and tests. The
report gives the score per module and every surviving mutant that `equivalent.py` does not
explain; with `--check` a survivor that is not explained fails the run (what CI uses).

    python -m tests.mutation.run            # every target
    python -m tests.mutation.run --quick    # the CI subset
    python -m tests.mutation.run --only "request guard"
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from tests.mutation.equivalent import EQUIVALENT
from tests.mutation.targets import TARGETS, Target

REPO = Path(__file__).resolve().parents[2]
LINKED = ("app", "core", "scheduler", "builder", "sdk", "tests")
SOURCE_PATHS = ("app", "core", "scheduler", "builder")
_RESULT = re.compile(r"^\s+(?P<name>\S+): (?P<status>.+)$")
# mutmut's statuses; a mutant the tests time out on or that kills their process is caught too
CAUGHT = frozenset({"killed", "timeout", "caught by type check", "segfault"})


@dataclass
class Outcome:
    target: Target
    statuses: dict[str, str] = field(default_factory=dict)  # mutant -> status
    diffs: dict[str, str] = field(default_factory=dict)  # surviving mutant -> its diff
    seconds: float = 0.0

    def survivors(self) -> list[str]:
        return sorted(name for name, status in self.statuses.items() if status not in CAUGHT)

    def unexplained(self) -> list[str]:
        return [name for name in self.survivors() if explanation(self.diffs[name]) is None]

    def score(self) -> float:
        total = len(self.statuses)
        caught = sum(1 for status in self.statuses.values() if status in CAUGHT)
        return 100.0 * caught / total if total else 100.0


def mutated_lines(diff: str) -> tuple[str, str]:
    """The line the mutant replaced and its replacement, stripped (what equivalents match on)."""
    removed = [line[1:].strip() for line in diff.splitlines() if line.startswith("-")]
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+")]
    removed = [line for line in removed if not line.startswith("--")]
    added = [line for line in added if not line.startswith("++")]
    return " ".join(removed), " ".join(added)


def explanation(diff: str) -> str | None:
    before, after = mutated_lines(diff)
    for known in EQUIVALENT:
        if known.before == before and known.after == after:
            return known.reason
    return None


def prepare(work: Path, targets: list[Target]) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    paths = [path for target in targets for path in target.paths]
    tests = list(
        dict.fromkeys(t for target in targets for t in target.tests if (REPO / t).exists())
    )
    for name in LINKED:
        (work / name).symlink_to(REPO / name)
    config = (REPO / "pyproject.toml").read_text()
    config += "\n[tool.mutmut]\n" + "\n".join(
        [
            f"source_paths = {json.dumps(list(SOURCE_PATHS))}",
            f"only_mutate = {json.dumps(paths)}",
            f"also_copy = {json.dumps(['tests', 'pyproject.toml'])}",
            f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "--timeout=60"]',
            "use_git_change_detection = false",
            "use_setproctitle = false",
            "",
        ]
    )
    (work / "pyproject.toml").write_text(config)
    return work


# what mutmut says when none of the target's tests reaches a mutated function: every mutant
# then survives, which is a score (0), not a failure of the run
_NOTHING_REACHED = "could not find any test case for any mutant"


def mutmut(work: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [str(Path(sys.executable).parent / "mutmut"), *args]
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    if done.returncode != 0 and _NOTHING_REACHED not in done.stdout:
        raise SystemExit(
            f"mutmut {' '.join(args)} failed in {work} ({done.returncode}):\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done.stdout


def module_of(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def run_targets(targets: list[Target], work: Path, workers: int) -> list[Outcome]:
    """One mutmut run for all targets (one copy, one pass recording which test reaches which
    function), its mutants then told apart by module."""
    started = time.monotonic()
    outcomes = [Outcome(target) for target in targets]
    reached = [o for o in outcomes if any((REPO / t).exists() for t in o.target.tests)]
    for outcome in outcomes:
        if outcome not in reached:
            print(f"   no test of {outcome.target.name} exists: nothing to run", flush=True)
    if not reached:
        return outcomes
    work = prepare(work, [o.target for o in reached])
    mutmut(work, "run", "--max-children", str(workers))
    by_module = {module_of(p): o for o in reached for p in o.target.paths}
    for line in mutmut(work, "results", "--all", "true").splitlines():
        match = _RESULT.match(line)
        if match:
            module = re.split(r"\.x[_ǁ]", match["name"], maxsplit=1)[0]
            by_module[module].statuses[match["name"]] = match["status"].strip()
    for outcome in reached:
        for name in outcome.survivors():
            outcome.diffs[name] = mutmut(work, "show", name)
        outcome.seconds = time.monotonic() - started
    return outcomes


def report(outcomes: list[Outcome]) -> str:
    lines = [
        "| module | mutants | caught | survived (equivalent) | score |",
        "|---|---|---|---|---|",
    ]
    for o in outcomes:
        counts = Counter(o.statuses.values())
        caught = sum(counts[s] for s in CAUGHT)
        survivors = o.survivors()
        equivalent = len(survivors) - len(o.unexplained())
        lines.append(
            f"| {o.target.name} | {len(o.statuses)} | {caught} | {len(survivors)} ({equivalent})"
            f" | {f'{o.score():.1f}%' if o.statuses else 'no mutant'} |"
        )
    if outcomes:
        lines.append(f"\n{max(o.seconds for o in outcomes):.0f} s in all")
    for o in outcomes:
        for name in o.survivors():
            reason = explanation(o.diffs[name])
            before, after = mutated_lines(o.diffs[name])
            said = f"equivalent: {reason}" if reason else "NOT EXPLAINED"
            lines.append(f"\n{o.target.name}: {name} ({o.statuses[name]}, {said})")
            lines.append(f"    - {before}\n    + {after}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the CI subset")
    parser.add_argument("--only", action="append", default=[], help="a target by name")
    parser.add_argument("--check", action="store_true", help="fail on an unexplained survivor")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", type=Path, default=REPO / "build" / "mutation")
    args = parser.parse_args(argv)
    targets = [
        replace(t, tests=t.quick_tests or t.tests) if args.quick else t
        for t in TARGETS
        if (not args.quick or t.quick) and (not args.only or t.name in args.only)
    ]
    if not targets:
        parser.error(f"no such target; targets: {', '.join(t.name for t in TARGETS)}")
    names = ", ".join(target.name for target in targets)
    print(f"== mutmut over {names}", flush=True)
    work = args.workdir / ("quick" if args.quick else "all")
    outcomes = run_targets(targets, work, args.workers)
    print(report(outcomes))
    unexplained = sum(len(o.unexplained()) for o in outcomes)
    if args.check and unexplained:
        print(f"\n{unexplained} surviving mutant(s) neither killed nor listed as equivalent")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
