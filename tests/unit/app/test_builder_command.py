"""`conveyor builder`: its settings, its help, and a configuration it cannot build with."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli.builder import builder_settings
from app.cli.main import main
from core.settings import Settings


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_BUILDS__IN_PROCESS", "false")
    monkeypatch.setenv("CONVEYOR_BUILDS__CACHE", "registry")
    monkeypatch.setenv("CONVEYOR_BUILDS__REGISTRY_PASSWORD", "hunter2")
    monkeypatch.setenv("CONVEYOR_BUILDER__STALE_AFTER_SECONDS", "12")
    settings = Settings()
    assert settings.builds.in_process is False and settings.builds.cache == "registry"
    assert settings.builder.stale_after_seconds == 12
    assert "hunter2" not in repr(settings)
    monkeypatch.setenv("CONVEYOR_BUILDS__CACHE", "max")
    with pytest.raises(ValueError, match="cache"):
        Settings()


def test_on_nomad_register_steps_call_back_to_the_builder() -> None:
    settings = Settings.model_validate(
        {
            "executor": {"kind": "nomad"},
            "nomad": {"control_plane_url": "http://server:8120"},
            "builder": {"listen_host": "10.0.0.5", "listen_port": 9000},
        }
    )
    mine = builder_settings(settings, name="b1", parallel=3)
    assert mine.nomad.control_plane_url == "http://10.0.0.5:9000"
    assert mine.builder.name == "b1" and mine.builds.parallel_builds == 3
    assert mine.executor.zygote is False, "attempts run where the scheduler is"
    advertised = settings.model_copy(
        update={"builder": settings.builder.model_copy(update={"advertise_url": "http://b:1"})}
    )
    assert builder_settings(advertised, name=None, parallel=None).nomad.control_plane_url == (
        "http://b:1"
    )
    local = builder_settings(Settings(), name=None, parallel=None)
    assert local.nomad.control_plane_url == Settings().nomad.control_plane_url


def test_help_names_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["builder", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "SIGTERM finishes or hands back" in out and "--parallel" in out


def test_a_configuration_it_cannot_build_with_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONVEYOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONVEYOR_BUILDS__BUILDER", "buildkit")
    monkeypatch.setenv("CONVEYOR_BUILDS__BUILDKIT_ADDRESS", "tcp://127.0.0.1:1234")
    with pytest.raises(SystemExit) as exited:
        main(["builder"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: ")
    assert "CONVEYOR_BUILDS__REGISTRY" in err
