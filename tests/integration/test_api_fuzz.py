"""Schemathesis fuzzes the served `/openapi.json` on PostgreSQL: no 5xx, nothing off the spec.

Three runs against one engine: `conveyor dev`'s app without a key (its document makes the key
optional), and the production app with a key and without one. Every check schemathesis has
is on: server errors, status codes, content types, headers and bodies against the document,
schema-valid data accepted, schema-violating data refused, `Allow` on 405, auth enforced. The
runs are seeded (`FUZZ_SEED` picks another seed) so a failure reproduces.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.server import create_app
from core.build_settings import BuildSettings, GitHubSettings
from core.domain import VersionStatus
from core.settings import DatabaseSettings, ExecutorSettings, LimitSettings, Settings
from scheduler.runtime import Runtime
from tests.integration.api_fixtures import SLUG, WS, write_workflow
from tests.integration.databases import fresh_database
from tests.served import ServedEngine, serve_engine

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SCHEMATHESIS = str(Path(sys.executable).with_name("st"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = int(os.environ.get("FUZZ_SEED", "20261130"))
MIN_CASES = 1000
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@dataclass
class Fuzzed:
    served: ServedEngine
    api_key: str

    @property
    def dev_url(self) -> str:
        return self.served.urls[0]

    @property
    def production_url(self) -> str:
        return self.served.urls[1]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    root = tmp_path_factory.mktemp("fuzz")
    keys: list[str] = []

    async def prepare(runtime: Runtime) -> None:
        version = await runtime.register_workflow(
            write_workflow(root / "workflow"), slug=SLUG, start_command="conveyor-worker main:app"
        )
        assert version.status is VersionStatus.READY, version.message
        await runtime.start()
        # an admin key, so that workspaces and other workspaces' keys are fuzzed too
        keys.append((await runtime.keys.create(WS, "fuzz", admin=True)).secret)
        # something to list, read and log
        for task, run_input in [("square", [3]), ("fails", ["no"]), ("chatty", [3])]:
            await runtime.service.create_run(WS, f"{SLUG}/{task}", run_input)

    with fresh_database("postgres", root) as url:
        settings = Settings(
            data_dir=root / "data",
            database=DatabaseSettings(url=url),
            limits=LimitSettings(min_timeout_seconds=1),
            executor=ExecutorSettings(kill_grace_seconds=1.0),
            # deploys of generated workflows give up on their made-up remotes quickly
            builds=BuildSettings(clone_timeout_seconds=10),
            github=GitHubSettings(webhook_secret="fuzz-webhook-secret"),
        )
        apps = [
            lambda runtime: create_app(runtime, anonymous_workspace=WS),
            lambda runtime: create_app(runtime, anonymous_workspace=None),
        ]
        with serve_engine(settings, prepare, apps, name="fuzz-server") as served:
            yield Fuzzed(served, keys[0])


def operations(url: str) -> set[str]:
    document = httpx.get(f"{url}/openapi.json").json()
    return {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


@dataclass
class Report:
    summary: dict[str, Any]
    tested: set[str]  # operations with at least one finished scenario


def schemathesis(url: str, folder: Path, max_examples: int, *headers: str) -> Report:
    """One `st run` with every check; its reports (the console output if it failed)."""
    summary, events = folder / "report.json", folder / "events.ndjson"
    command = [
        SCHEMATHESIS,
        f"--config-file={CONFIG}",
        "run",
        f"{url}/openapi.json",
        "--checks=all",
        "--phases=examples,coverage,fuzzing",
        "--mode=all",
        f"--max-examples={max_examples}",
        f"--seed={SEED}",
        "--workers=1",
        "--request-timeout=30",
        "--report=json,ndjson",
        f"--report-json-path={summary}",
        f"--report-ndjson-path={events}",
        *(f"--header={header}" for header in headers),
    ]
    folder.mkdir(parents=True)
    done = subprocess.run(
        command, cwd=folder, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-5_000:]
    tested = set()
    with events.open() as lines:
        for line in lines:
            finished = json.loads(line).get("ScenarioFinished")
            if finished is not None:
                tested.add(finished["recorder"]["label"])
    return Report(json.loads(summary.read_text()), tested)


@pytest.mark.timeout(900)
def test_the_api_survives_fuzzing_and_keeps_to_its_spec(
    fuzzed: Fuzzed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f"Authorization: Bearer {fuzzed.api_key}"
    runs = [
        ("dev, no key", fuzzed.dev_url, 12, ()),
        ("production, key", fuzzed.production_url, 12, (key,)),
        ("production, no key", fuzzed.production_url, 3, ()),
    ]

    def fuzz(label: str, url: str, max_examples: int, headers: tuple[str, ...]) -> Report:
        return schemathesis(url, tmp_path / label.replace(", ", "-"), max_examples, *headers)

    # the run without a key changes nothing (every request is refused): it goes beside the
    # two others, which run one after the other as each may change what the next one sees
    with ThreadPoolExecutor(2) as pool:
        unkeyed = pool.submit(fuzz, *runs[2])
        reports = [fuzz(*run) for run in runs[:2]] + [unkeyed.result()]
    total = 0
    lines = []
    for (label, url, _, _), report in zip(runs, reports, strict=True):
        # schemathesis reads the document itself rather than testing it as an operation
        expected = operations(url) - {"GET /openapi.json"}
        assert report.tested == expected, (label, expected ^ report.tested)
        summary = report.summary
        assert summary["failures"] == [] and summary["errors"] == [], label
        cases = summary["test_cases"]
        assert cases["with_failures"] == cases["errored"] == 0, (label, cases)
        warned = {
            kind: unexpected
            for kind, found in summary["warnings"].items()
            if kind in _BAD_WARNINGS
            and (unexpected := [op for op in found if (kind, op) not in _EXPECTED_WARNINGS])
        }
        assert not warned, (label, warned)
        total += cases["generated"]
        lines.append(f"{label}: {cases['generated']} cases over {len(expected)} operations")
    with capsys.disabled():
        print(f"\nschemathesis (seed {SEED}): " + "; ".join(lines) + f"; {total} in all")
    assert total >= MIN_CASES


# A run's input is checked against the parameters its task registered, and a workflow's
# repository against the server's URL policy (see schemathesis.toml): input of the right shape
# may still not fit, and is refused.
_EXPECTED_WARNINGS = {
    ("validation_mismatch", "POST /v1/task-runs"),
    ("validation_mismatch", "POST /v1/workflows"),
    ("validation_mismatch", "PATCH /v1/workflows/{workflow_id}"),
}
# warnings that mean the document itself is off (not "this id was never found")
_BAD_WARNINGS = {
    "validation_mismatch",
    "unsupported_regex",
    "unresolvable_reference",
    "method_not_allowed",
    "base_url_mismatch",
    "missing_deserializer",
}
