"""What a task may see of its environment, checked the same way for every executor."""

from __future__ import annotations

import pytest

# what a control plane typically holds in its environment, none of which a task may see
CONTROL_PLANE_SECRETS = {
    "CONVEYOR_DATABASE__URL": "postgresql+asyncpg://conveyor:hunter2@db/conveyor",
    "CONVEYOR_DASHBOARD__SESSION_SECRET": "session-secret",
    "CONVEYOR_BUILDS__SECRETS_KEY": "secrets-key",
    "CONVEYOR_GITHUB__PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----",
    "AWS_ACCESS_KEY_ID": "AKIACONTROLPLANE",
    "AWS_SECRET_ACCESS_KEY": "control-plane-aws-secret",
    "DEVELOPER_TOKEN": "only-in-the-shell",
}
# the run's own ids are the only CONVEYOR_* names a task sees
RUN_VARIABLES = {"CONVEYOR_TASK_RUN_ID", "CONVEYOR_ATTEMPT"}


def assert_task_environment(env: dict[str, str], *, run_id: str) -> None:
    leaked = sorted(set(CONTROL_PLANE_SECRETS) & set(env))
    assert not leaked, f"the task saw the control plane's {leaked}"
    for value in CONTROL_PLANE_SECRETS.values():
        assert value not in env.values()
    private = {name for name in env if name.startswith("CONVEYOR_")} - RUN_VARIABLES
    assert not private, f"the task saw {sorted(private)}"
    assert env["CONVEYOR_TASK_RUN_ID"] == run_id
    assert env["CONVEYOR_ATTEMPT"] == "0"
    assert env["RENDER_SDK_MODE"] == "run"
    assert env["RENDER_SDK_SOCKET_PATH"]
    assert env["GREETING"] == "hello from the workflow"


def plant_control_plane_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control plane's process holds secrets in its environment (set after its settings)."""
    for name, value in CONTROL_PLANE_SECRETS.items():
        monkeypatch.setenv(name, value)
