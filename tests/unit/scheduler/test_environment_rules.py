"""A task's environment, rule by rule, against lists written out here (never the production ones).

Adding a name to the host allow-list (say `SSH_AUTH_SOCK`, which hands the task the developer's
ssh agent) or dropping one of the two layers that keep `CONVEYOR_*` out must fail one of these.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import ExecutorSettings, Plan, Settings
from scheduler.executors.base import AttemptSpec, Mode, VersionSpec
from scheduler.executors.environment import (
    container_environment,
    default_path,
    host_variables,
    instance_variables,
    is_private,
    local_attempt_environment,
    local_version_environment,
    variable_name_problem,
)

# a developer's shell: what it holds is what a careless allow-list would hand a task
HOST = {
    "HOME": "/home/dev",
    "USER": "dev",
    "LOGNAME": "dev",
    "LANG": "en_GB.UTF-8",
    "LANGUAGE": "en_GB",
    "LC_ALL": "C.UTF-8",
    "LC_CTYPE": "UTF-8",
    "TZ": "Europe/London",
    "TMPDIR": "/tmp/dev",
    "SHELL": "/bin/zsh",
    "PATH": "/home/dev/bin:/usr/bin",
    "PWD": "/home/dev/project",
    "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock",
    "SSH_AGENT_PID": "4242",
    "GPG_AGENT_INFO": "/run/gpg",
    "DISPLAY": ":0",
    "XAUTHORITY": "/home/dev/.Xauthority",
    "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus",
    "KUBECONFIG": "/home/dev/.kube/config",
    "DOCKER_HOST": "unix:///var/run/docker.sock",
    "AWS_ACCESS_KEY_ID": "AKIADEV",
    "AWS_SECRET_ACCESS_KEY": "dev-secret",
    "AWS_PROFILE": "prod",
    "GITHUB_TOKEN": "ghp_dev",
    "VIRTUAL_ENV": "/home/dev/.venv",
    "PYTHONPATH": "/home/dev/lib",
    "LD_PRELOAD": "/home/dev/hook.so",
    "RENDER_API_KEY": "rnd_dev",
    "RENDER_SDK_SOCKET_PATH": "/tmp/other.sock",
    "CONVEYOR_DATABASE__URL": "postgresql://u:p@db/c",
    "conveyor_lowercase": "x",
    "HTTP_PROXY": "http://proxy:3128",
    "HTTPS_PROXY": "http://proxy:3129",
    "NO_PROXY": "localhost",
    "http_proxy": "http://proxy:3128",
    "https_proxy": "http://proxy:3129",
    "no_proxy": "localhost",
    "SSL_CERT_FILE": "/etc/ssl/cert.pem",
    "SSL_CERT_DIR": "/etc/ssl/certs",
    "REQUESTS_CA_BUNDLE": "/etc/ssl/bundle.pem",
    "CURL_CA_BUNDLE": "/etc/ssl/curl.pem",
}

ALWAYS_PASSED = {
    "HOME": "/home/dev",
    "USER": "dev",
    "LOGNAME": "dev",
    "LANG": "en_GB.UTF-8",
    "LANGUAGE": "en_GB",
    "LC_ALL": "C.UTF-8",
    "LC_CTYPE": "UTF-8",
    "TZ": "Europe/London",
    "TMPDIR": "/tmp/dev",
}
# proxy variables are on the host (HOST) but not passed by default: their URLs often carry a
# password, so an operator lists them on purpose
PASSED_BY_DEFAULT_SETTING = {
    "SSL_CERT_FILE": "/etc/ssl/cert.pem",
    "SSL_CERT_DIR": "/etc/ssl/certs",
    "REQUESTS_CA_BUNDLE": "/etc/ssl/bundle.pem",
}
SOCKET = Path("/run/conveyor/att-1.sock")


def attempt(env: dict[str, str] | None = None, mode: Mode = Mode.RUN) -> AttemptSpec:
    return AttemptSpec(
        attempt_id="att-1",
        run_id="trn-1",
        attempt=0,
        mode=mode,
        start_command="conveyor-worker main:app",
        cwd=Path("/srv/app"),
        socket_path=SOCKET,
        log_path=Path("/srv/log"),
        plan=Plan(name="starter", cpu=0.5, memory_mb=512, usd_per_hour=0.05),
        env=env or {},
    )


def test_the_host_gives_only_the_fixed_names_without_pass_env() -> None:
    assert host_variables(HOST, ()) == ALWAYS_PASSED


def test_the_default_pass_env_adds_ca_bundles_only() -> None:
    passed = host_variables(HOST, ExecutorSettings().pass_env)
    assert passed == {**ALWAYS_PASSED, **PASSED_BY_DEFAULT_SETTING}


def test_the_default_pass_env_is_exactly_the_documented_list() -> None:
    assert ExecutorSettings().pass_env == (
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
    )


def test_pass_env_names_that_are_not_set_on_the_host_are_left_out() -> None:
    assert host_variables({"HOME": "/h"}, ("CURL_CA_BUNDLE", "MISSING")) == {"HOME": "/h"}
    assert host_variables(HOST, ("CURL_CA_BUNDLE",)) == {
        **ALWAYS_PASSED,
        "CURL_CA_BUNDLE": "/etc/ssl/curl.pem",
    }


@pytest.mark.parametrize("name", ["CONVEYOR_DATABASE__URL", "conveyor_lowercase"])
def test_host_variables_alone_never_pass_a_private_name(name: str) -> None:
    """The second layer, tested without the settings validator in front of it."""
    assert host_variables(HOST, (name,)) == ALWAYS_PASSED


@pytest.mark.parametrize(
    ("name", "private"),
    [
        ("CONVEYOR_DATABASE__URL", True),
        ("CONVEYOR_", True),
        ("conveyor_x", True),
        ("Conveyor_X", True),
        ("CONVEYOR", False),
        ("CONVEYORX", False),
        ("MY_CONVEYOR_X", False),
        ("RENDER_SDK_MODE", False),
    ],
)
def test_is_private(name: str, private: bool) -> None:
    assert is_private(name) is private


@pytest.mark.parametrize(
    ("names", "named"),
    [
        (("CONVEYOR_DATABASE__URL",), "['CONVEYOR_DATABASE__URL']"),
        (("HOME", "conveyor_secret", "Conveyor_X"), "['conveyor_secret', 'Conveyor_X']"),
    ],
)
def test_the_pass_env_setting_refuses_private_names(names: tuple[str, ...], named: str) -> None:
    """The first layer, alone: the operator hears about it at start-up."""
    with pytest.raises(ValidationError) as caught:
        ExecutorSettings(pass_env=names)
    assert f"the control plane's own variables never reach tasks: {named}" in str(caught.value)


def test_the_pass_env_setting_from_the_environment_refuses_private_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVEYOR_EXECUTOR__PASS_ENV", '["HOME", "CONVEYOR_SECRETS_KEY"]')
    with pytest.raises(ValidationError, match="never reach tasks"):
        Settings()


@pytest.mark.parametrize("names", [(), ("HTTP_PROXY",), ("SSL_CERT_FILE", "MY_CONVEYOR")])
def test_the_pass_env_setting_keeps_other_names(names: tuple[str, ...]) -> None:
    assert ExecutorSettings(pass_env=names).pass_env == names


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("GREETING", None),
        ("_private", None),
        ("a1", None),
        ("MY_CONVEYOR_URL", None),
        ("RENDER_API_KEY", None),
        ("1A", "'1A' is not a variable name (letters, digits and _, not first a digit)"),
        ("", "'' is not a variable name (letters, digits and _, not first a digit)"),
        ("A-B", "'A-B' is not a variable name (letters, digits and _, not first a digit)"),
        ("A B", "'A B' is not a variable name (letters, digits and _, not first a digit)"),
        ("A\n", "'A\\n' is not a variable name (letters, digits and _, not first a digit)"),
        ("É", "'É' is not a variable name (letters, digits and _, not first a digit)"),
        (
            "CONVEYOR_TASK_RUN_ID",
            "'CONVEYOR_TASK_RUN_ID' is reserved: Conveyor sets the names starting "
            "RENDER_SDK_ or CONVEYOR_",
        ),
        (
            "conveyor_x",
            "'conveyor_x' is reserved: Conveyor sets the names starting RENDER_SDK_ or CONVEYOR_",
        ),
        (
            "RENDER_SDK_SOCKET_PATH",
            "'RENDER_SDK_SOCKET_PATH' is reserved: Conveyor sets the names starting "
            "RENDER_SDK_ or CONVEYOR_",
        ),
        (
            "render_sdk_mode",
            "'render_sdk_mode' is reserved: Conveyor sets the names starting "
            "RENDER_SDK_ or CONVEYOR_",
        ),
    ],
)
def test_variable_name_problem(name: str, problem: str | None) -> None:
    assert variable_name_problem(name) == problem


def test_default_path_is_this_interpreters_bin_then_the_systems() -> None:
    bin_folder = str(Path(sys.executable).parent)
    assert default_path() == f"{bin_folder}:/usr/local/bin:/usr/bin:/bin"


def test_instance_variables() -> None:
    assert instance_variables(attempt(mode=Mode.REGISTER)) == {
        "PYTHONUNBUFFERED": "1",
        "RENDER_SDK_MODE": "register",
        "RENDER_SDK_SOCKET_PATH": "/run/conveyor/att-1.sock",
    }


def test_a_local_version_environment_is_the_host_allow_list_path_and_the_version() -> None:
    version = VersionSpec(
        "wfv-1",
        "conveyor-worker main:app",
        Path("/srv/app"),
        env={"GREETING": "hi", "PATH": "/venv/bin:/usr/bin", "VIRTUAL_ENV": "/venv", "TZ": "UTC"},
    )
    env = local_version_environment(version, pass_env=("HTTP_PROXY",), host=HOST)
    assert env == {
        **ALWAYS_PASSED,
        "TZ": "UTC",  # the workflow's own value wins over the host's
        "HTTP_PROXY": "http://proxy:3128",
        "PATH": "/venv/bin:/usr/bin",
        "VIRTUAL_ENV": "/venv",
        "GREETING": "hi",
        "PYTHONUNBUFFERED": "1",
    }


def test_a_local_version_without_path_gets_the_default_one() -> None:
    version = VersionSpec("wfv-1", "x", Path("/srv/app"), env={"PYTHONUNBUFFERED": "0"})
    env = local_version_environment(version, pass_env=(), host={})
    assert env == {"PATH": default_path(), "PYTHONUNBUFFERED": "1"}


def test_a_local_attempt_adds_the_run_ids_then_the_instance_variables() -> None:
    spec = attempt(
        {"CONVEYOR_TASK_RUN_ID": "trn-1", "CONVEYOR_ATTEMPT": "0", "RENDER_SDK_MODE": "bogus"}
    )
    env = local_attempt_environment({"HOME": "/h", "GREETING": "hi"}, spec)
    assert env == {
        "HOME": "/h",
        "GREETING": "hi",
        "CONVEYOR_TASK_RUN_ID": "trn-1",
        "CONVEYOR_ATTEMPT": "0",
        "PYTHONUNBUFFERED": "1",
        "RENDER_SDK_MODE": "run",
        "RENDER_SDK_SOCKET_PATH": "/run/conveyor/att-1.sock",
    }


def test_a_container_gets_the_attempt_and_instance_variables_and_nothing_of_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/ssh-agent.sock")
    monkeypatch.setenv("HOME", "/home/dev")
    spec = attempt({"GREETING": "hi", "CONVEYOR_TASK_RUN_ID": "trn-1"})
    assert container_environment(spec) == {
        "GREETING": "hi",
        "CONVEYOR_TASK_RUN_ID": "trn-1",
        "PYTHONUNBUFFERED": "1",
        "RENDER_SDK_MODE": "run",
        "RENDER_SDK_SOCKET_PATH": "/run/conveyor/att-1.sock",
    }


def test_the_local_version_environment_reads_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(HOST):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/home/ci")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/ssh-agent.sock")
    version = VersionSpec("wfv-1", "x", Path("/srv/app"))
    env = local_version_environment(version, pass_env=())
    assert env == {"HOME": "/home/ci", "PATH": default_path(), "PYTHONUNBUFFERED": "1"}
