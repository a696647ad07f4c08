"""Transient database failures do not stop scheduling or lose an attempt's end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from core.domain import AttemptState, RunStatus
from tests.integration.engine_fixtures import open_engine, run_to_end

pytestmark = pytest.mark.anyio


def _failing_once(method: Any) -> Any:
    calls = {"n": 0}

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("SELECT 1", {}, Exception("database is locked"))
        return await method(*args, **kwargs)

    return wrapper


async def test_a_failed_admission_pass_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_engine(tmp_path) as runtime:
        # as if an API process without a scheduler created the run: the loop admits it
        monkeypatch.setattr(runtime.transitions.writer, "admitter", None)
        monkeypatch.setattr(runtime.transitions, "admit", _failing_once(runtime.transitions.admit))
        run = await run_to_end(runtime, "wf/leaf", [1])
    assert run.status is RunStatus.SUCCEEDED and run.results == [2]
    assert "admission pass failed" in caplog.text


async def test_a_failed_end_of_attempt_is_recorded_on_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_engine(tmp_path) as runtime:
        monkeypatch.setattr(runtime.transitions, "end", _failing_once(runtime.transitions.end))
        run = await run_to_end(runtime, "wf/exits_quietly", [])
        await runtime.run_until_idle(timeout=30)
        ended = await runtime.service.get_run("wsp-default", run.id)
    assert run.status is RunStatus.FAILED
    assert ended.attempts[0].state is AttemptState.ENDED
    assert ended.attempts[0].exit_code == 0
