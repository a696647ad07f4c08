"""Configuration: one `Settings`, read from `CONVEYOR_*` variables at the process's entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.build_settings import BuilderSettings, BuildSettings, GitHubSettings
from core.domain import RetryPolicy
from core.sandbox_settings import SandboxSettings
from core.security_settings import RateLimitSettings, SecuritySettings


class Plan(BaseModel, frozen=True):
    name: str
    cpu: float
    memory_mb: int
    usd_per_hour: float

    @property
    def usd_per_second(self) -> float:
        return self.usd_per_hour / 3600


DEFAULT_PLANS: tuple[Plan, ...] = (
    Plan(name="starter", cpu=0.5, memory_mb=512, usd_per_hour=0.05),
    Plan(name="standard", cpu=1, memory_mb=2048, usd_per_hour=0.20),
    Plan(name="pro", cpu=2, memory_mb=4096, usd_per_hour=0.40),
    Plan(name="pro_plus", cpu=4, memory_mb=8192, usd_per_hour=0.80),
    Plan(name="pro_max", cpu=8, memory_mb=16384, usd_per_hour=1.20),
    Plan(name="pro_ultra", cpu=16, memory_mb=32768, usd_per_hour=2.40),
)


class DatabaseSettings(BaseModel):
    url: str | None = None  # None: SQLite under the data dir
    echo: bool = False
    # PostgreSQL: connections kept open, and how many more a burst may open (and then close)
    pool_size: int = Field(default=20, ge=1)
    max_overflow: int = Field(default=20, ge=0)


class BlobSettings(BaseModel):
    url: str | None = None  # None: a folder under the data dir; or file:///path
    inline_bytes: int = 64 * 1024  # payloads up to this size stay in the database
    endpoint_url: str | None = None  # s3:// only: an S3-compatible endpoint; None: AWS
    region: str | None = None  # s3:// only; None: the AWS environment's region
    presign_seconds: int = Field(default=900, gt=0)  # lifetime of presigned download URLs


class ExecutorSettings(BaseModel):
    kind: str = "local"
    kill_grace_seconds: float = 5.0
    # an instance still running this long after it reported its result is stopped
    linger_seconds: float = Field(default=5.0, gt=0)
    enforce_memory: bool = True
    # host variables a local task sees besides HOME, the locale, TZ and TMPDIR (never CONVEYOR_*);
    # proxies (HTTP_PROXY, HTTPS_PROXY, NO_PROXY…) only when listed here: their URLs often
    # carry the proxy's credentials
    pass_env: tuple[str, ...] = (
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
    )

    # local executor: fork attempts from a warm interpreter per version where the start command
    # is `conveyor-worker module:app` or `render-workflows module:app` (others are spawned)
    zygote: bool = True
    # each attempt (and build step) in a sandbox of its own: namespaces, its own uid, a cgroup
    # with its plan's limits (docs/deployment.md "What a task sees"); `off` only on purpose
    sandbox: Literal["on", "off"] = "on"
    zygote_idle_seconds: float = Field(default=600.0, gt=0)  # an unused zygote is closed then
    max_zygotes: int = Field(default=16, ge=1)  # beyond this the least recently used idle goes

    @field_validator("pass_env")
    @classmethod
    def _no_private_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        private = [name for name in names if name.upper().startswith("CONVEYOR_")]
        if private:
            raise ValueError(f"the control plane's own variables never reach tasks: {private}")
        return names


class NomadSettings(BaseModel):
    """The Nomad executor (`CONVEYOR_EXECUTOR__KIND=nomad`); see docs/nomad.md."""

    address: str = "http://127.0.0.1:4646"
    token: str | None = None  # an ACL token (X-Nomad-Token); None: NOMAD_TOKEN
    namespace: str = "default"  # sent with every request (`?namespace=`)
    region: str | None = None  # None: NOMAD_REGION, else the agent's own
    # TLS: the agent's certificate is verified against this CA (None: NOMAD_CACERT, else the
    # system's); a client certificate for mutual TLS (None: NOMAD_CLIENT_CERT/NOMAD_CLIENT_KEY)
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    tls_skip_verify: bool = False  # never in production: anyone on the path can act as Nomad
    datacenters: tuple[str, ...] = ("*",)  # the wildcard needs Nomad 1.5 or later
    control_plane_url: str = "http://127.0.0.1:8120"  # what the `conveyor agent` sidecar calls
    attempt_token_secret: str = ""  # HMAC key for attempt tokens; the relay is off while empty
    # the control-plane image run as the sidecar, from a registry the clients pull from, pinned
    # by tag or digest (Nomad's docker driver pulls a `:latest` tag on every start)
    agent_image: str | None = None
    worker_image: str | None = None  # for versions whose build recorded none
    # uid:gid both tasks run as (the control-plane image's `conveyor` user): the worker must be
    # able to connect to the socket the sidecar creates
    task_user: str = "10001:10001"
    pids_limit: int = Field(default=1024, ge=16)  # processes the worker's container may hold
    tmp_size_mb: int = Field(default=256, ge=1)  # the worker's tmpfs /tmp (its root is read-only)
    job_prefix: str = "conveyor"
    cpu_mhz_per_core: int = 2000  # a plan's cores x this = the worker's CPU in MHz
    agent_cpu_mhz: int = 100
    agent_memory_mb: int = 64
    blocking_wait_seconds: float = 30.0  # `?wait=` of Nomad's blocking queries
    request_timeout_seconds: float = Field(default=10.0, gt=0)  # other requests than those
    # connections to the agent: each watched attempt holds one for its blocking query
    max_connections: int = Field(default=64, ge=1)


class DockerSettings(BaseModel):
    """The Docker executor (`CONVEYOR_EXECUTOR__KIND=docker`): one container per attempt."""

    binary: str = "/usr/bin/docker"  # the CLI python-on-whales drives (a daemon must answer it)
    image: str = "conveyor-worker:latest"  # for attempts whose version recorded no image
    network: str = "bridge"  # `--network`; the instance protocol needs none (a mounted socket)
    # extra mounts for every container, as `docker run -v` takes them: `HOST:CONTAINER[:ro|rw]`
    mounts: tuple[str, ...] = ()
    # `UID:GID` runs run as, never root; None: 65534:65534 (nobody) when the control plane runs as
    # root, else the control plane's own (it can give the socket folder to no one else)
    user: str | None = None
    pids_limit: int = Field(default=512, ge=16)  # processes and threads in one container
    # the container's only writable place besides rw mounts; its pages count against the memory
    tmp_size_mb: int = Field(default=512, ge=1)
    name_prefix: str = "conveyor"  # containers are named `<prefix>-<attempt id>`

    @field_validator("user")
    @classmethod
    def _unprivileged(cls, value: str | None) -> str | None:
        if value is None:
            return None
        uid, colon, gid = value.partition(":")
        if not (colon and uid.isdigit() and gid.isdigit()):
            raise ValueError(f"docker user {value!r} is not UID:GID (numbers, e.g. 65534:65534)")
        if int(uid) == 0 or int(gid) == 0:
            raise ValueError(f"docker user {value!r}: runs never run as root (uid or gid 0)")
        return value


class LimitSettings(BaseModel):
    max_input_bytes: int = 4 * 1024 * 1024
    max_output_bytes: int = 64 * 1024 * 1024
    max_concurrency: int = 20
    default_timeout_seconds: int = 7200
    min_timeout_seconds: int = 30
    max_timeout_seconds: int = 86400
    subtask_hold_seconds: float = 10.0
    held_requests_per_instance: int = 4
    max_lost_attempts: int = 5
    registration_timeout_seconds: float = 60.0
    idempotency_window_seconds: int = 24 * 3600
    api_wait_max_seconds: float = 60.0
    # a run's code starts children: bounded, so no tree can grow without end
    max_children_per_run: int = Field(default=10_000, ge=1)
    max_tree_depth: int = Field(default=100, ge=1)  # levels below a root
    # a flow's step log: steps per run, and JSON characters of one step's input or result and
    # of all its steps' together (Render's flow_step_limit_exceeded, flow_payload_too_large,
    # flow_history_too_large)
    max_flow_steps: int = Field(default=10_000, ge=1)
    max_flow_payload_chars: int = Field(default=4 * 1024 * 1024, ge=1)
    max_flow_history_chars: int = Field(default=64 * 1024 * 1024, ge=1)


class DashboardSettings(BaseModel):
    # None: a random secret persisted in the data dir (set it when several servers share users).
    session_secret: str | None = None
    session_max_age_seconds: int = Field(default=12 * 3600, gt=0)


class SchedulerSettings(BaseModel):
    heartbeat_seconds: float = 5.0
    # a scheduler silent this long is gone: another takes over (reconciles) its attempts
    stale_after_seconds: float = 30.0


class RetrySettings(BaseModel):
    max_retries: int = 3
    wait_duration_ms: int = 1000
    factor: float = 2.0

    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.wait_duration_ms, self.factor)


class Settings(BaseSettings):
    """Everything configurable; nested groups read as `CONVEYOR_LIMITS__MAX_CONCURRENCY=5`."""

    model_config = SettingsConfigDict(
        env_prefix="CONVEYOR_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path(".conveyor")
    host: str = "127.0.0.1"
    port: int = 8120
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    blobs: BlobSettings = Field(default_factory=BlobSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    nomad: NomadSettings = Field(default_factory=NomadSettings)
    docker: DockerSettings = Field(default_factory=DockerSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    builds: BuildSettings = Field(default_factory=BuildSettings)
    builder: BuilderSettings = Field(default_factory=BuilderSettings)
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    plans: tuple[Plan, ...] = DEFAULT_PLANS
    default_plan: str = "standard"

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'conveyor.db'}"

    def plan(self, name: str | None) -> Plan:
        wanted = name or self.default_plan
        for plan in self.plans:
            if plan.name == wanted:
                return plan
        raise KeyError(wanted)

    @property
    def plan_names(self) -> tuple[str, ...]:
        return tuple(plan.name for plan in self.plans)
