"""Dependency files decide the virtualenv's key; nothing else does."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.base import BuildFailed
from builder.dependencies import environment_key, find_dependencies


def key(folder: Path) -> str:
    return environment_key(find_dependencies(folder), folder, "python", "sdk")


def test_code_changes_keep_the_key_and_dependency_changes_change_it(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("x = 1\n")
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")
    first = key(tmp_path)
    (tmp_path / "main.py").write_text("x = 2\n")
    assert key(tmp_path) == first
    (tmp_path / "requirements-dev.txt").write_text("pytest\n")
    with_dev = key(tmp_path)
    assert with_dev != first
    (tmp_path / "requirements.txt").write_text("six==1.17.0\n")
    assert key(tmp_path) not in (first, with_dev)


def test_interpreter_and_sdk_are_part_of_the_key(tmp_path: Path) -> None:
    deps = find_dependencies(tmp_path)
    assert deps.empty and deps.requirements == ()
    base = environment_key(deps, tmp_path, "python", "sdk-1")
    assert environment_key(deps, tmp_path, "python", "sdk-2") != base
    assert environment_key(deps, tmp_path, "python3.12", "sdk-1") != base


def test_requirements_txt_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["a", "b>=2"]\n'
    )
    assert find_dependencies(tmp_path).requirements == ("a", "b>=2")
    (tmp_path / "uv.lock").write_text("version = 1\n")
    assert [p.name for p in find_dependencies(tmp_path).files] == ["pyproject.toml", "uv.lock"]
    (tmp_path / "requirements.txt").write_text("c\n")
    assert find_dependencies(tmp_path).requirements == ("-r", str(tmp_path / "requirements.txt"))


def test_a_broken_pyproject_is_a_build_failure(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\n")
    with pytest.raises(BuildFailed, match="not valid TOML"):
        find_dependencies(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = "a"\n')
    with pytest.raises(BuildFailed, match="list of strings"):
        find_dependencies(tmp_path)
