"""Small values of the build pipeline: repository names, env-var sealing, BuildKit's cache lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from builder.buildkit import _CacheWatch
from builder.catalog import WorkflowChanges, check_changes
from builder.records import repo_full_name
from core.build_settings import BuildSettings
from core.errors import InvalidRequest
from core.secrets import SecretBox, SecretsUnreadable
from core.settings import Settings


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://github.com/Octo/Hello.git", "octo/hello"),
        ("https://github.com/octo/hello", "octo/hello"),
        ("file:///tmp/x/remotes/octo/hello.git", "octo/hello"),
        ("https://github.com/octo", None),
    ],
)
def test_repository_full_name(url: str, name: str | None) -> None:
    assert repo_full_name(url) == name


def test_env_vars_are_sealed_with_a_key_kept_in_the_data_dir(tmp_path: Path) -> None:
    box = SecretBox.from_settings(Settings(data_dir=tmp_path))
    token = box.seal({"API_TOKEN": "s3cret"})
    assert "s3cret" not in token
    assert (tmp_path / "secrets.key").stat().st_mode & 0o777 == 0o600
    again = SecretBox.from_settings(Settings(data_dir=tmp_path))
    assert again.open(token) == {"API_TOKEN": "s3cret"}
    other = SecretBox.from_settings(
        Settings(data_dir=tmp_path, builds=BuildSettings(secrets_key=fresh_key()))
    )
    with pytest.raises(SecretsUnreadable):
        other.open(token)


def fresh_key() -> str:
    return Fernet.generate_key().decode()


def test_keys_rotate_newest_first(tmp_path: Path) -> None:
    old, new = fresh_key(), fresh_key()

    def box(keys: str) -> SecretBox:
        return SecretBox.from_settings(
            Settings(data_dir=tmp_path, builds=BuildSettings(secrets_key=keys))
        )

    sealed_old = box(old).seal({"A": "1"})
    both = box(f"{new},{old}")
    assert both.open(sealed_old) == {"A": "1"}
    sealed_new = both.seal({"B": "2"})
    assert box(new).open(sealed_new) == {"B": "2"}  # the newest key encrypts
    with pytest.raises(SecretsUnreadable) as unreadable:
        box(new).open(sealed_old, "workflow 'etl' (wf-1)")
    assert unreadable.value.http_status == 409
    assert "workflow 'etl' (wf-1)" in unreadable.value.message
    assert "CONVEYOR_BUILDS__SECRETS_KEY" in unreadable.value.message


@pytest.mark.parametrize("value", ["not-a-key", " , ", f"{Fernet.generate_key().decode()},x"])
def test_malformed_secrets_keys_are_a_settings_error(value: str) -> None:
    with pytest.raises(ValueError, match="CONVEYOR_BUILDS__SECRETS_KEY"):
        BuildSettings(secrets_key=value)
    assert BuildSettings(secrets_key="").secrets_key is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (WorkflowChanges(slug="Bad Slug"), "slug"),
        (WorkflowChanges(repo_url="github.com/octo/hello"), "not a git URL"),
        (WorkflowChanges(repo_url="https://example.com/"), "owner/repository"),
        (WorkflowChanges(runtime="ruby"), "runtime must be one of python, node"),
        (WorkflowChanges(root_dir="../escape"), "rootDir"),
        (WorkflowChanges(env_vars={"RENDER_SDK_MODE": "run"}), "reserved"),
        (WorkflowChanges(env_vars={"1BAD": "x"}), "not a variable name"),
        (WorkflowChanges(start_command="  "), "startCommand"),
    ],
)
def test_bad_workflow_fields_are_refused(changes: WorkflowChanges, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        check_changes(changes)


def test_buildkit_plain_progress_tells_a_cached_dependency_step() -> None:
    watch = _CacheWatch()
    for line in [
        "#5 [2/7] RUN python3 -m venv /opt/venv",
        "#5 CACHED",
        "#8 [5/7] RUN if grep -qvE '^[[:space:]]*(#|$)' /opt/conveyor-deps/requirements.txt; then",
        "#8 DONE 0.4s",
    ]:
        watch.feed(line)
    assert not watch.deps_cached
    watch.feed("#8 CACHED")
    assert watch.deps_cached
