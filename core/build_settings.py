"""Settings groups of the build pipeline: `CONVEYOR_BUILDS__*` and `CONVEYOR_GITHUB__*`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import BaseModel, Field, SecretStr, field_validator

SECRETS_KEY_SETTING = "CONVEYOR_BUILDS__SECRETS_KEY"


class BuildSettings(BaseModel):
    builder: str = "venv"  # "venv" (embedded) or "buildkit" (container image)
    # Fernet keys (urlsafe base64 of 32 bytes) for workflow env vars, comma-separated, newest
    # first: the first encrypts, all decrypt. None: one key kept in the data dir.
    secrets_key: str | None = None
    clone_timeout_seconds: float = Field(default=300.0, gt=0)
    max_checkout_bytes: int = Field(default=500 * 1024 * 1024, gt=0)
    submodules: bool = False
    build_timeout_seconds: float = Field(default=1800.0, gt=0)
    python: str | None = None  # interpreter that creates virtualenvs; None: the server's own
    base_image: str = "python:3.11-slim"
    node_base_image: str = "node:20-bookworm-slim"  # FROM of a Node project's generated Dockerfile
    # a PEM bundle the generated Node Dockerfile trusts for its install step (NODE_EXTRA_CA_CERTS),
    # for builders behind a TLS-intercepting proxy; None: the base image's own CAs
    ca_bundle: Path | None = None
    registry: str | None = None  # e.g. "127.0.0.1:5000/conveyor": where images are pushed
    # True: `<registry>/<slug>:<commit>` and `:latest`; False: one repository for every
    # workflow, `<registry>:<slug>-<commit>` (immutable tags allowed, as on ECR)
    repository_per_workflow: bool = True
    # cache = "registry": where the cache goes, `<cache_repository>:<slug>` (its tags move);
    # None: `<image repository>:buildcache`
    cache_repository: str | None = None
    # "inline": the cache travels in the pushed image (any BuildKit, the docker driver too);
    # "registry": every layer (`mode=max`) under `<image>:buildcache`, which needs a BuildKit
    # that exports caches (`buildkit_address`, or a daemon with the containerd image store)
    cache: Literal["inline", "registry"] = "inline"
    docker_host: str | None = None  # the daemon `docker buildx` talks to; None: the CLI's default
    buildkit_address: str | None = None  # a BuildKit daemon (tcp://…, unix://…) to build on
    # registry credentials: "auto" is ECR for an ECR host, a username/password when one is set,
    # else none (the daemon's own login, or a registry without authentication)
    registry_auth: Literal["auto", "ecr", "basic", "none"] = "auto"
    registry_username: str | None = None
    registry_password: SecretStr | None = None
    ecr_region: str | None = None  # None: the region in the ECR host, else the AWS environment's
    ecr_endpoint_url: str | None = None  # an ECR-compatible endpoint (tests); None: AWS
    ecr_refresh_seconds: float = Field(default=1800.0, gt=0)  # renew this long before expiry
    log_tail_chars: int = Field(default=3000, gt=0)
    parallel_builds: int = Field(default=2, gt=0)
    # False: `conveyor server` only queues builds and `conveyor builder` processes run them
    in_process: bool = True
    # git hosts a workflow's repository may be on besides the configured GitHub's (names, no
    # scheme): e.g. ["gitlab.com"]; see builder/repo_policy.py for every rule
    git_hosts: tuple[str, ...] = ()
    # file:// repositories read the server's own disk: `conveyor dev` turns this on for itself
    allow_file_repos: bool = False

    @field_validator("secrets_key")
    @classmethod
    def _keys_are_fernet_keys(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # unset, as an empty variable has always meant
        secrets_keys(value)
        return value


def secrets_keys(value: str) -> list[bytes]:
    """The keys of a `secrets_key` value, newest first; ValueError naming a malformed one."""
    keys = [part.strip().encode() for part in value.split(",") if part.strip()]
    if not keys:
        raise ValueError(f"{SECRETS_KEY_SETTING} holds no key")
    for number, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(
                f"key {number} of {SECRETS_KEY_SETTING} is not a Fernet key "
                "(urlsafe base64 of 32 bytes)"
            ) from None
    return keys


class BuilderSettings(BaseModel):
    """A `conveyor builder` process (`CONVEYOR_BUILDER__*`); what it builds with is `builds`."""

    name: str | None = None  # shown on each build it runs; None: `<hostname>-<pid>`
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    # a builder silent this long is gone: another takes over its build (once)
    stale_after_seconds: float = Field(default=30.0, gt=0)
    poll_seconds: float = Field(default=1.0, gt=0)  # how often an idle builder looks for builds
    max_takeovers: int = Field(default=1, ge=0)  # times one build is taken over from the vanished
    # a server holds a build it records until its check run is announced; a builder releases one
    # held longer than this (the server died in between)
    hold_timeout_seconds: float = Field(default=120.0, gt=0)
    # SIGTERM: builds in progress get this long to finish, then go back to the queue
    stop_grace_seconds: float = Field(default=60.0, ge=0)
    # where register-mode instances on Nomad call back (the builder serves their relay)
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8121, ge=0, le=65535)
    advertise_url: str | None = None  # None: http://<listen_host>:<listen_port>


class GitHubSettings(BaseModel):
    app_id: int | None = None
    private_key: str | None = None  # PEM text
    private_key_path: Path | None = None
    webhook_secret: str | None = None
    api_url: str = "https://api.github.com"
    # where repositories live (GitHub Enterprise: its URL): pushes match workflows whose repository
    # is under it, and installation tokens are sent to this host only
    web_url: str = "https://github.com"
    check_run_name: str = "Conveyor"
    # the App's name in its URL, for its install link: <web_url>/apps/<slug>/installations/new
    app_slug: str | None = None
    setup_state_seconds: int = Field(default=3600, gt=0)  # how long an install link stays good
    max_webhook_bytes: int = Field(default=25 * 1024 * 1024, gt=0)

    def private_key_pem(self) -> str | None:
        if self.private_key:
            return self.private_key
        if self.private_key_path is not None:
            return self.private_key_path.read_text()
        return None
