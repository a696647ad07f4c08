"""Docker executor options that need no daemon: mounts, the container's user, its lock-down."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import DockerSettings, Plan
from scheduler.executors.base import AttemptSpec, Mode
from scheduler.executors.docker_options import (
    Identity,
    container_identity,
    hand_over,
    parse_mount,
    run_options,
)


def test_mounts_are_parsed_or_refused() -> None:
    assert parse_mount("/a:/b") == ("/a", "/b")
    assert parse_mount("/a:/b:ro") == ("/a", "/b", "ro")
    assert parse_mount("named-volume:/data:rw") == ("named-volume", "/data", "rw")
    assert parse_mount("/a:/tmp/inputs:ro") == ("/a", "/tmp/inputs", "ro")
    for bad in ("/only", "/a::ro", "/a:/b:ro:x"):
        with pytest.raises(ValueError, match="SRC:DST"):
            parse_mount(bad)
    for bad in ("/a:relative", "/a:/", "/a:/tmp", "/a:/tmp/"):
        with pytest.raises(ValueError, match="must be absolute, not / nor /tmp"):
            parse_mount(bad)
    with pytest.raises(ValueError, match="the mode is ro or rw, not 'z'"):
        parse_mount("/a:/b:z")


def test_the_container_user_is_never_root() -> None:
    assert container_identity(None, 0, 0) == Identity(65534, 65534)
    assert container_identity(None, 1000, 1001) == Identity(1000, 1001)  # a developer's own
    assert container_identity("2000:3000", 0, 0) == Identity(2000, 3000)
    assert str(Identity(2000, 3000)) == "2000:3000"
    assert DockerSettings(user="1:1").user == "1:1"
    for bad, message in [
        ("0:0", "never run as root"),
        ("1000:0", "never run as root"),
        ("0:1000", "never run as root"),
        ("nobody", "is not UID:GID"),
        ("1000", "is not UID:GID"),
        ("1000:users", "is not UID:GID"),
        ("-1:5", "is not UID:GID"),
    ]:
        with pytest.raises(ValidationError, match=message):
            DockerSettings(user=bad)


def test_limits_have_floors() -> None:
    assert (DockerSettings().pids_limit, DockerSettings().tmp_size_mb) == (512, 512)
    with pytest.raises(ValidationError):
        DockerSettings(pids_limit=15)
    with pytest.raises(ValidationError):
        DockerSettings(tmp_size_mb=0)


def _spec(folder: Path) -> AttemptSpec:
    return AttemptSpec(
        attempt_id="att-1",
        run_id="trn-1",
        attempt=0,
        mode=Mode.RUN,
        start_command="conveyor-worker main:app",
        cwd=folder,
        socket_path=folder / "sock" / "s",
        log_path=folder / "log",
        plan=Plan(name="starter", cpu=0.5, memory_mb=512, usd_per_hour=0),
        env={"GREETING": "hi"},
    )


def test_the_container_is_locked_down(tmp_path: Path) -> None:
    settings = DockerSettings(pids_limit=100, tmp_size_mb=64, network="none")
    options = run_options(settings, _spec(tmp_path), Identity(65534, 65534), [("/d", "/data")])
    socket_folder = str(tmp_path / "sock")
    assert options["user"] == "65534:65534"
    assert options["cap_drop"] == ["ALL"]
    assert options["security_options"] == ["no-new-privileges"]
    assert options["pids_limit"] == 100
    assert options["read_only"] is True
    assert options["tmpfs"] == ["/tmp:rw,exec,nosuid,nodev,size=64m,mode=1777"]
    assert options["volumes"] == [(socket_folder, socket_folder), ("/d", "/data")]
    assert (options["cpus"], options["memory"], options["memory_swap"]) == (0.5, "512m", "512m")
    assert options["networks"] == ["none"]
    env = options["envs"]
    assert (env["HOME"], env["TMPDIR"], env["GREETING"]) == ("/tmp", "/tmp", "hi")
    assert env["RENDER_SDK_SOCKET_PATH"] == f"{socket_folder}/s"


def test_the_workflow_may_point_home_elsewhere(tmp_path: Path) -> None:
    spec = replace(_spec(tmp_path), env={"HOME": "/data/home"})
    env = run_options(DockerSettings(), spec, Identity(1, 1), [])["envs"]
    assert (env["HOME"], env["TMPDIR"]) == ("/data/home", "/tmp")


def test_the_socket_folder_is_handed_to_the_container_user(tmp_path: Path) -> None:
    folder = tmp_path / "sock"
    folder.mkdir(mode=0o700)
    (folder / "s").touch()
    own = Identity(os.geteuid(), os.getegid())
    hand_over(folder / "s", own)  # already theirs: nothing to change, allowed to anyone
    if os.geteuid() != 0:
        with pytest.raises(PermissionError):
            hand_over(folder / "s", Identity(65534, 65534))
        return
    hand_over(folder / "s", Identity(65534, 65534))
    for path in (folder, folder / "s"):
        assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534)
    assert folder.stat().st_mode & 0o777 == 0o700
