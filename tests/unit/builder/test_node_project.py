"""Node projects: when a checkout is one, which tool installs it, its cache key, its start."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from builder.base import BuildFailed
from builder.node_project import is_node_project, read_node_project

PACKAGE = {
    "name": "wf",
    "scripts": {"build": "tsc", "start": "node dist/main.js"},
    "dependencies": {"left-pad": "1.3.0"},
}


def project(root: Path, package: object = PACKAGE, **files: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(json.dumps(package))
    for name, content in files.items():
        (root / name).write_text(content)
    return root


def test_a_package_json_without_python_files_is_a_node_project(tmp_path: Path) -> None:
    node = project(tmp_path / "node")
    assert is_node_project(node, "python") is True
    python_files = ("pyproject.toml", "requirements.txt", "requirements-dev.txt", "main.py")
    for python_file in python_files:
        mixed = project(tmp_path / python_file)
        (mixed / python_file).write_text("")
        assert is_node_project(mixed, "python") is False, python_file
        assert is_node_project(mixed, "node") is True, python_file
    assert is_node_project(tmp_path / "empty", "python") is False


def test_the_lockfile_chooses_the_tool(tmp_path: Path) -> None:
    npm = read_node_project(project(tmp_path / "npm", **{"package-lock.json": "{}"}))
    assert npm.tool == "npm"
    assert npm.install == ("npm", "ci", "--no-audit", "--no-fund", "--install-links")
    none = read_node_project(project(tmp_path / "none"))
    assert none.lockfile is None
    assert none.install == ("npm", "install", "--no-audit", "--no-fund", "--install-links")


def test_a_lockfile_whose_tool_is_missing_is_a_clear_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path / "pnpm")
    (root / "pnpm-lock.yaml").write_text("lockfileVersion: '9.0'\n")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(BuildFailed, match=r"pnpm-lock\.yaml needs pnpm"):
        read_node_project(root)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    pnpm = read_node_project(root)
    assert (pnpm.tool, pnpm.install) == ("pnpm", ("pnpm", "install", "--frozen-lockfile"))


def test_the_cache_key_follows_the_lockfile_dependencies_and_node(tmp_path: Path) -> None:
    root = project(tmp_path / "p", **{"package-lock.json": '{"v": 1}'})
    key = read_node_project(root).cache_key("v20.19.2")
    assert len(key) == 24
    scripts_changed = {**PACKAGE, "scripts": {"build": "tsc -p .", "start": "node x.js"}}
    (root / "package.json").write_text(json.dumps(scripts_changed))
    assert read_node_project(root).cache_key("v20.19.2") == key  # scripts install nothing
    assert read_node_project(root).cache_key("v22.1.0") != key
    (root / "package-lock.json").write_text('{"v": 2}')
    assert read_node_project(root).cache_key("v20.19.2") != key
    (root / "package-lock.json").write_text('{"v": 1}')
    deps_changed = {**scripts_changed, "dependencies": {"left-pad": "1.2.0"}}
    (root / "package.json").write_text(json.dumps(deps_changed))
    assert read_node_project(root).cache_key("v20.19.2") != key


@pytest.mark.parametrize(
    ("script", "command"),
    [
        ("node dist/main.js", "node dist/main.js"),
        ("  node --enable-source-maps dist/main.js ", "node --enable-source-maps dist/main.js"),
        ("tsc && node dist/main.js", "/bin/sh -c 'tsc && node dist/main.js'"),
        ("NODE_ENV=production node $MAIN", "/bin/sh -c 'NODE_ENV=production node $MAIN'"),
    ],
)
def test_the_start_script_is_the_start_command(tmp_path: Path, script: str, command: str) -> None:
    package = {**PACKAGE, "scripts": {"start": script}}
    assert read_node_project(project(tmp_path, package)).start_command() == command


def test_bad_package_files_are_clear_failures(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed, match='no "start" script'):
        read_node_project(project(tmp_path / "a", {"scripts": {"build": "tsc"}})).start_command()
    with pytest.raises(BuildFailed, match="must be a JSON object"):
        read_node_project(project(tmp_path / "b", ["not", "an", "object"]))
    broken = tmp_path / "c"
    broken.mkdir()
    (broken / "package.json").write_text("{nope")
    with pytest.raises(BuildFailed, match=r"package\.json is not valid JSON"):
        read_node_project(broken)
    with pytest.raises(BuildFailed, match=r"needs a package\.json"):
        read_node_project(tmp_path / "missing")
