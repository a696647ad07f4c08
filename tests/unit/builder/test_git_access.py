"""What git is given to reach a repository: the token scoped to GitHub's URL, protocols, pins."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from builder.git_access import access_for
from builder.repo_policy import RepositoryRefused
from builder.source import GitAccess, git_env
from core.build_settings import BuildSettings, GitHubSettings
from core.settings import Settings

pytestmark = pytest.mark.anyio


def _config(env: dict[str, str]) -> list[tuple[str, str]]:
    count = int(env.get("GIT_CONFIG_COUNT", "0"))
    return [(env[f"GIT_CONFIG_KEY_{n}"], env[f"GIT_CONFIG_VALUE_{n}"]) for n in range(count)]


HELPER = (
    '!f() { test "$1" = get || exit 0; echo username=x-access-token; '
    'echo "password=$GIT_INSTALLATION_TOKEN"; }; f'
)


def test_the_token_is_a_credential_scoped_to_the_github_url_read_from_the_environment() -> None:
    env = git_env(GitAccess("https://github.com", token="ghs_abc"))
    assert _config(env) == [("credential.https://github.com.helper", HELPER)]
    assert env["GIT_INSTALLATION_TOKEN"] == "ghs_abc"
    assert env["GIT_ALLOW_PROTOCOL"] == "https:ssh"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == "/dev/null"
    assert "ghs_abc" not in " ".join(value for _, value in _config(env))


def test_a_github_enterprise_url_scopes_the_helper_to_its_host_and_port() -> None:
    env = git_env(GitAccess("http://127.0.0.1:8958/", token="ghs_abc"))
    assert _config(env)[0][0] == "credential.http://127.0.0.1:8958.helper"


def test_the_helper_answers_get_with_the_token_and_nothing_else(tmp_path: Path) -> None:
    env = git_env(GitAccess("https://github.com", token="ghs_abc"))
    asked = subprocess.run(
        ["git", "credential", "fill"],
        input="protocol=https\nhost=github.com\n\n",
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert asked.stdout.splitlines() == [
        "protocol=https",
        "host=github.com",
        "username=x-access-token",
        "password=ghs_abc",
    ]
    other = subprocess.run(
        ["git", "credential", "fill"],
        input="protocol=https\nhost=gitlab.com\n\n",
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert other.returncode != 0 and "ghs_abc" not in other.stdout  # no helper for that host


def test_no_token_no_header_and_pins_go_to_curl() -> None:
    env = git_env(GitAccess("https://github.com", pins=("gitlab.com:443:172.65.251.78",)))
    assert _config(env) == [("http.curloptResolve", "gitlab.com:443:172.65.251.78")]


async def _stub(host: str) -> Sequence[str]:
    return {"gitlab.com": ["172.65.251.78", "2606:4700::1"]}.get(host, [])


def _settings(**builds: object) -> Settings:
    return Settings(
        data_dir=Path("/nonexistent"),
        builds=BuildSettings(git_hosts=("gitlab.com",), **builds),  # type: ignore[arg-type]
        github=GitHubSettings(web_url="https://github.com"),
    )


async def test_the_token_is_given_only_for_a_repository_on_github() -> None:
    on_github = await access_for(_settings(), "https://github.com/acme/shop", "t", resolver=_stub)
    assert on_github == GitAccess("https://github.com", "t", ("https", "ssh"), ())
    elsewhere = await access_for(_settings(), "https://gitlab.com/acme/shop", "t", resolver=_stub)
    assert elsewhere == GitAccess(
        "https://github.com",
        None,
        ("https", "ssh"),
        ("gitlab.com:443:172.65.251.78,[2606:4700::1]",),
    )


async def test_file_repositories_add_the_file_protocol_only_when_allowed() -> None:
    access = await access_for(
        _settings(allow_file_repos=True), "file:///srv/acme/shop", None, resolver=_stub
    )
    assert access.protocols == ("https", "ssh", "file")
    with pytest.raises(RepositoryRefused) as refused:
        await access_for(_settings(), "file:///srv/acme/shop", None, resolver=_stub)
    assert refused.value.rule == "file-repository"
