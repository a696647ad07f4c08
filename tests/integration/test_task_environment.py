"""A task sees only its own environment: never the control plane's settings or credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.domain import RunStatus, VersionStatus
from core.settings import ExecutorSettings
from scheduler.executors.environment import HOST_VARIABLES
from scheduler.runtime import Runtime
from tests.integration.engine_fixtures import copy_workflow, make_settings, run_to_end
from tests.integration.task_environment import (
    RUN_VARIABLES,
    assert_task_environment,
    plant_control_plane_secrets,
)

pytestmark = pytest.mark.anyio


async def test_a_local_task_sees_its_workflow_environment_and_nothing_of_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path / "data")  # read before the process's variables are set
    plant_control_plane_secrets(monkeypatch)
    # not in executor.pass_env by default: a proxy URL often carries its credentials
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.internal:3128")
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")  # in pass_env
    monkeypatch.setenv("LANG", "C.UTF-8")
    runtime = await Runtime.open(settings)
    try:
        version = await runtime.register_workflow(
            copy_workflow("engine", tmp_path),
            slug="wf",
            start_command="conveyor-worker main:app",
            env_vars={"GREETING": "hello from the workflow"},
        )
        assert version.status is VersionStatus.READY, version.message
        await runtime.start()
        run = await run_to_end(runtime, "wf/environment", [])
    finally:
        await runtime.close()
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.results is not None
    env: dict[str, str] = run.results[0]
    assert_task_environment(env, run_id=run.id)
    assert "HTTPS_PROXY" not in env
    assert env["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
    assert env["LANG"] == "C.UTF-8"
    assert env["HOME"]
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].split(":")[1:] == ["/usr/local/bin", "/usr/bin", "/bin"]
    allowed = {
        *RUN_VARIABLES,
        *HOST_VARIABLES,
        *ExecutorSettings().pass_env,
        "ENGINE_SCRATCH",  # the test suite's own pass_env
        "GREETING",
        "PATH",
        "PYTHONUNBUFFERED",
        "RENDER_SDK_MODE",
        "RENDER_SDK_SOCKET_PATH",
    }
    assert set(env) <= allowed, f"unexpected variables: {sorted(set(env) - allowed)}"
