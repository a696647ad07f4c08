"""One attempt numbering everywhere: the API's (from 0, as Render's), the CLI's, the dashboard's."""

from __future__ import annotations

import html
import json
import re
import textwrap
from collections.abc import Iterator

import httpx
import pytest
from starlette.types import ASGIApp

from app.cli.main import main
from app.server import create_app
from core.domain import VersionStatus
from scheduler.runtime import Runtime
from tests.integration.api_fixtures import WS, make_settings
from tests.served import ServedEngine, serve_engine

WORKFLOW = textwrap.dedent("""
    import os

    from conveyor import Retry, Workflows

    app = Workflows()


    @app.task(retry=Retry(max_retries=2, wait_duration_ms=0))
    def flaky() -> None:
        attempt = os.environ["CONVEYOR_ATTEMPT"]
        print(f"body of attempt {attempt}", flush=True)
        raise RuntimeError(f"attempt {attempt} fails")
""")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedEngine]:
    root = tmp_path_factory.mktemp("attempts")
    (root / "workflow").mkdir()
    (root / "workflow" / "main.py").write_text(WORKFLOW)

    async def prepare(runtime: Runtime) -> None:
        version = await runtime.register_workflow(
            root / "workflow", slug="numbers", start_command="conveyor-worker main:app"
        )
        assert version.status is VersionStatus.READY, version.message
        await runtime.start()

    def make_app(runtime: Runtime) -> ASGIApp:
        return create_app(runtime, anonymous_workspace=WS)

    with serve_engine(make_settings(root / "data"), prepare, [make_app]) as served:
        yield served


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().out


def visible_text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_the_same_attempt_reads_the_same_number_everywhere(
    server: ServedEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    with httpx.Client(base_url=server.url, timeout=70) as http:
        run_id = http.post("/v1/task-runs", json={"task": "numbers/flaky", "input": []}).json()[
            "id"
        ]
        run = http.get(f"/v1/task-runs/{run_id}", params={"wait": 60}).json()
        dashboard = visible_text(http.get(f"/runs/{run_id}").text)
        first_log = visible_text(http.get(f"/runs/{run_id}", params={"attempt": 0}).text)

    # the API: 0, 1, 2 — and the task's own CONVEYOR_ATTEMPT says the same
    assert run["status"] == "failed"
    assert [a["attempt"] for a in run["attempts"]] == [0, 1, 2]
    assert [a["error"] for a in run["attempts"]] == [
        "RuntimeError: attempt 0 fails",
        "RuntimeError: attempt 1 fails",
        "RuntimeError: attempt 2 fails",
    ]

    # the CLI
    code, shown = cli(capsys, "--url", server.url, "runs", "show", run_id)
    assert code == 0
    numbered = [line.split()[0] for line in shown.splitlines() if line.startswith("    #")]
    assert numbered == ["#0", "#1", "#2"]
    code, shown = cli(capsys, "--url", server.url, "runs", "show", run_id, "--json")
    assert [a["attempt"] for a in json.loads(shown)["attempts"]] == [0, 1, 2]

    # the dashboard
    assert "Attempts 3 (#0 to #2; retries 2)" in dashboard
    assert "Error (attempt #2) RuntimeError: attempt 2 fails" in dashboard
    for number in (0, 1, 2):
        assert f"Attempt #{number} error" in dashboard
        assert f"Log of attempt #{number}" in dashboard
    assert "Logs (attempt #2)" in dashboard and "body of attempt 2" in dashboard
    assert "Logs (attempt #0)" in first_log and "body of attempt 0" in first_log
