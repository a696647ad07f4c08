"""The sandbox's rules, each value written out: mounts, limits per plan, cgroup files, uids,
which host paths a view shows and hides."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from conveyor._sandbox import Bind, View, plan_binds
from core.sandbox_settings import SandboxSettings, parse_mount
from core.settings import Settings
from scheduler.sandbox.cgroups import AttemptCgroup, Limits, attach_waits
from scheduler.sandbox.identities import IdentityPool, NoIdentityLeft
from scheduler.sandbox.policy import SandboxPolicy


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("/data:/data", ("/data", "/data", False)),
        ("/data:/mnt/data:ro", ("/data", "/mnt/data", False)),
        ("/data:/mnt/data:rw", ("/data", "/mnt/data", True)),
    ],
)
def test_a_mount_is_source_destination_and_access(text: str, parsed: tuple[str, str, bool]) -> None:
    assert parse_mount(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/data", "a mount is SRC:DST"),
        ("/data:/d:rx", "a mount is SRC:DST"),
        ("/a:/b:ro:x", "a mount is SRC:DST"),
        ("data:/d", "must be absolute"),
        ("/data:d", "must be absolute"),
        ("/data:/", "belongs to the sandbox itself"),
        ("/data:/proc", "belongs to the sandbox itself"),
        ("/data:/dev/", "belongs to the sandbox itself"),
        ("/data:/tmp", "belongs to the sandbox itself"),
    ],
)
def test_a_bad_mount_is_refused_with_its_rule(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mount(text)
    with pytest.raises(ValueError, match=message):
        SandboxSettings(mounts=(text,))


def test_the_sandbox_is_on_unless_turned_off() -> None:
    assert Settings().executor.sandbox == "on"
    assert Settings(executor={"sandbox": "off"}).executor.sandbox == "off"  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Settings(executor={"sandbox": "maybe"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("plan", "cpu", "memory_bytes"),
    [
        ("starter", 0.5, 536_870_912),
        ("standard", 1.0, 2_147_483_648),
        ("pro", 2.0, 4_294_967_296),
        ("pro_plus", 4.0, 8_589_934_592),
        ("pro_max", 8.0, 17_179_869_184),
        ("pro_ultra", 16.0, 34_359_738_368),
    ],
)
def test_each_plan_gives_render_s_cpu_and_memory(
    tmp_path: Path, plan: str, cpu: float, memory_bytes: int
) -> None:
    policy = SandboxPolicy(SandboxSettings(), hidden=(), state_dir=tmp_path)
    assert policy.limits(Settings().plan(plan)) == Limits(cpu, memory_bytes, 512)


def v1_cgroup(tmp_path: Path) -> AttemptCgroup:
    folders = {name: (str(tmp_path / name), False) for name in ("cpu", "memory", "pids")}
    for folder, _ in folders.values():
        os.mkdir(folder)
    return AttemptCgroup(folders)


def test_v1_limits_are_written_as_the_kernel_reads_them(tmp_path: Path) -> None:
    v1_cgroup(tmp_path).limit(Limits(cpu=0.5, memory_bytes=536_870_912, pids=512))
    assert (tmp_path / "cpu" / "cpu.cfs_period_us").read_text() == "100000"
    assert (tmp_path / "cpu" / "cpu.cfs_quota_us").read_text() == "50000"
    assert (tmp_path / "memory" / "memory.limit_in_bytes").read_text() == "536870912"
    assert (tmp_path / "memory" / "memory.memsw.limit_in_bytes").read_text() == "536870912"
    assert (tmp_path / "pids" / "pids.max").read_text() == "512"


def test_v2_limits_are_written_as_the_kernel_reads_them(tmp_path: Path) -> None:
    cgroup = AttemptCgroup({name: (str(tmp_path), True) for name in ("cpu", "memory", "pids")})
    cgroup.limit(Limits(cpu=2.0, memory_bytes=4_294_967_296, pids=64))
    assert (tmp_path / "cpu.max").read_text() == "200000 100000"
    assert (tmp_path / "memory.max").read_text() == "4294967296"
    assert (tmp_path / "memory.swap.max").read_text() == "0"
    assert (tmp_path / "pids.max").read_text() == "64"


@pytest.mark.parametrize(
    ("name", "v2", "text", "killed"),
    [
        ("memory.oom_control", False, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", False),
        ("memory.oom_control", False, "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", True),
        ("memory.events", True, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n", False),
        ("memory.events", True, "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n", True),
    ],
)
def test_out_of_memory_is_read_from_the_oom_kill_count(
    tmp_path: Path, name: str, v2: bool, text: str, killed: bool
) -> None:
    (tmp_path / name).write_text(text)
    assert AttemptCgroup({"memory": (str(tmp_path), v2)}).out_of_memory() is killed


def test_uids_are_handed_out_once_until_released(tmp_path: Path) -> None:
    pool = IdentityPool(tmp_path, base=300_000, count=2)
    first, second = pool.acquire(), pool.acquire()
    assert (first.uid, second.uid) == (300_000, 300_001)
    assert (first.gid, second.gid) == (300_000, 300_001)
    with pytest.raises(NoIdentityLeft, match="all 2 sandbox uids from 300000 are in use"):
        pool.acquire()
    first.release()
    assert pool.acquire().uid == 300_000


def test_a_uid_held_by_another_process_of_the_host_is_skipped(tmp_path: Path) -> None:
    held = os.open(tmp_path / "300000.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)  # as another control plane's lock would be
    try:
        pid = os.fork()
        if pid == 0:  # a separate open file description: the lock above is not its own
            try:
                uid = IdentityPool(tmp_path, base=300_000, count=3).acquire().uid
            except BaseException:
                os._exit(99)
            os._exit(uid - 300_000)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(held)
    assert os.waitstatus_to_exitcode(status) == 1


def test_a_uid_some_process_runs_as_is_skipped(tmp_path: Path) -> None:
    mine = os.getuid()
    pool = IdentityPool(tmp_path, base=mine, count=2)
    assert pool.acquire().uid == mine + 1


def test_a_view_shows_its_folders_once_and_never_the_root(tmp_path: Path) -> None:
    code = tmp_path / "code"
    (code / "pkg").mkdir(parents=True)
    other = tmp_path / "other"
    other.mkdir()
    view = View(
        binds=(
            Bind(str(code)),
            Bind(str(code / "pkg")),  # under a folder already shown, the same way: dropped
            Bind(str(code / "pkg"), "", True),  # writable: kept
            Bind("/"),
            Bind(str(tmp_path / "missing")),
            Bind(str(other), "/mnt/other"),
            Bind("/usr/lib"),  # the system's: shown whole anyway
        ),
        python_paths=False,
    )
    assert plan_binds(view) == [
        Bind(str(other), "/mnt/other", False),
        Bind(str(code), str(code), False),
        Bind(str(code / "pkg"), str(code / "pkg"), True),
    ]


def test_a_policy_view_shows_the_code_its_environment_and_the_operator_s_mounts(
    tmp_path: Path,
) -> None:
    settings = SandboxSettings(mounts=("/srv/models:/models:ro", "/srv/out:/out:rw"), tmp_mb=64)
    policy = SandboxPolicy(settings, hidden=(tmp_path / "data",), state_dir=tmp_path)
    env = {
        "VIRTUAL_ENV": "/venvs/abc",
        "PATH": "/venvs/abc/bin:/usr/local/bin:/usr/bin:/bin:relative",
    }
    view = policy.view(cwd=Path("/code"), env=env, identity=None, shared=[Path("/s")])
    assert view.binds == (
        Bind("/code"),
        Bind("/venvs/abc"),
        Bind("/venvs/abc/bin"),
        Bind("/srv/models", "/models", False),
        Bind("/srv/out", "/out", True),
    )
    assert view.hidden == (str((tmp_path / "data").resolve()),)
    assert view.shared == ("/s",)
    assert view.tmp_bytes == 67_108_864
    assert (view.uid, view.gid, view.network) == (None, None, True)
    assert View.from_json(view.to_json()) == view


def test_a_folder_shown_both_writable_and_read_only_is_writable(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    for binds in (
        (Bind(str(venv), "", True), Bind(str(venv))),
        (Bind(str(venv)), Bind(str(venv), "", True)),
    ):
        view = View(binds=binds, python_paths=False)
        assert plan_binds(view) == [Bind(str(venv), str(venv), True)]


def test_a_folder_shown_writable_is_not_shown_again_read_only_for_the_environment(
    tmp_path: Path,
) -> None:
    """A venv being built is the step's VIRTUAL_ENV and on its PATH, and what it writes to."""
    policy = SandboxPolicy(SandboxSettings(), hidden=(), state_dir=tmp_path)
    env = {
        "VIRTUAL_ENV": "/venvs/.abc.bld-1",
        "PATH": "/venvs/.abc.bld-1/bin:/opt/tools/bin:/usr/bin",
    }
    view = policy.view(
        cwd=Path("/code"),
        env=env,
        identity=None,
        writable=[Path("/venvs/.abc.bld-1")],
        readable=[Path("/venvs/.abc.bld-10"), Path("/code")],
    )
    assert view.binds == (
        Bind("/code"),
        Bind("/venvs/.abc.bld-1", "", True),
        Bind("/venvs/.abc.bld-10"),
        Bind("/code"),
        Bind("/opt/tools/bin"),
    )


def test_an_emptied_cgroup_is_removed_at_once_and_one_with_a_process_is_left(
    tmp_path: Path,
) -> None:
    """(Plain folders stand in for cgroupfs, where `rmdir` ignores the control files.)"""
    empty = {name: (str(tmp_path / "empty" / name), False) for name in ("cpu", "memory")}
    for folder, _ in empty.values():
        os.makedirs(folder)
    assert AttemptCgroup(empty).remove_if_empty() is True
    assert not any(Path(folder).exists() for folder, _ in empty.values())
    assert AttemptCgroup(empty).remove_if_empty() is True  # already gone

    busy = {"pids": (str(tmp_path / "busy"), False)}
    os.makedirs(busy["pids"][0])
    (tmp_path / "busy" / "cgroup.procs").write_text("4242\n")
    assert AttemptCgroup(busy).remove_if_empty() is False
    assert (tmp_path / "busy").is_dir()


V1_CPU = {"rw", "cpu"}
V1_MEMORY = {"rw", "memory"}
V2_FAVORING = {"rw", "nsdelegate", "favordynmods"}


@pytest.mark.parametrize(
    ("mounts", "expedited", "normal", "waits"),
    [
        ([V1_CPU, V1_MEMORY], "0\n", "0\n", True),
        ([V1_CPU, V1_MEMORY], "1\n", "0\n", False),
        ([V1_CPU], "1\n", "1\n", True),  # rcu_normal wins over rcu_expedited
        ([V1_CPU], "", "", True),  # neither setting readable
        ([V1_CPU], "1\n", "", False),
        ([V1_CPU], "2\n", "0\n", True),
        ([V2_FAVORING], "0\n", "0\n", False),
        ([V2_FAVORING], "0\n", "1\n", False),
        ([V2_FAVORING, V1_MEMORY], "0\n", "0\n", True),  # one hierarchy without it is enough
        ([V2_FAVORING, V1_MEMORY], "1\n", "0\n", False),
        ([{"rw", "favordynmodsx"}], "0\n", "0\n", True),
        ([], "0\n", "0\n", False),  # no hierarchy, nothing to join
    ],
)
def test_joining_a_cgroup_waits_for_a_grace_period_unless_favoured_or_expedited(
    mounts: list[set[str]], expedited: str, normal: str, waits: bool
) -> None:
    assert attach_waits(mounts, expedited, normal) is waits
