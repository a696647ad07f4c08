"""Choosing systems and workloads on the command line, and what each configuration runs."""

from __future__ import annotations

import pytest

from bench.options import QUICK_SIZES, Sizes, parse
from bench.systems import ALL_SYSTEMS, Kind, group_of, runs_workload, select_systems


def test_the_default_is_every_configuration_and_both_peers() -> None:
    names = [s.name for s in ALL_SYSTEMS]
    assert len(names) == 12
    assert "conveyor/zygote/render-sdk/postgres" in names
    assert names[-4:-2] == [
        "conveyor/zygote/conveyor-sdk/sqlite/no-sandbox",
        "conveyor/zygote/conveyor-sdk/postgres/no-sandbox",
    ]
    assert names[-2:] == ["rq", "celery"]
    options = parse([])
    assert options.systems == ALL_SYSTEMS
    assert options.workloads == ("W1", "W2", "W3", "W4", "W5", "W6", "W7")
    assert (options.rounds, options.sizes, options.budget_s) == (3, Sizes(), 6.0)


def test_patterns_select_configurations() -> None:
    chosen = select_systems(["conveyor/zygote/*", "rq"])
    assert [s.name for s in chosen] == [
        "conveyor/zygote/conveyor-sdk/sqlite",
        "conveyor/zygote/conveyor-sdk/postgres",
        "conveyor/zygote/render-sdk/sqlite",
        "conveyor/zygote/render-sdk/postgres",
        "conveyor/zygote/conveyor-sdk/sqlite/no-sandbox",
        "conveyor/zygote/conveyor-sdk/postgres/no-sandbox",
        "rq",
    ]


def test_quick_is_one_round_of_small_counts(capsys: pytest.CaptureFixture[str]) -> None:
    options = parse(["--quick", "--systems", "celery", "--workloads", "w1, W4"])
    assert (options.rounds, options.sizes, options.budget_s) == (1, QUICK_SIZES, 3.0)
    assert [s.kind for s in options.systems] == [Kind.CELERY]
    assert options.workloads == ("W1", "W4")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--systems", "conveyor/fork/*"], "--systems 'conveyor/fork/*' matches none of"),
        (["--workloads", "W1,W9"], "unknown workload(s) W9"),
        (["--rounds", "0"], "--rounds must be at least 1"),
        (["--budget", "-1"], "--budget must be positive"),
    ],
)
def test_bad_choices_are_refused_with_a_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        parse(argv)
    assert exit.value.code == 2
    assert message in capsys.readouterr().err


def test_w5_runs_once_per_executor_mode_on_postgresql() -> None:
    runs_w5 = [s.name for s in ALL_SYSTEMS if runs_workload(s, "W5")]
    assert runs_w5 == [
        "conveyor/zygote/conveyor-sdk/postgres",
        "conveyor/spawn/conveyor-sdk/postgres",
    ]
    assert all(runs_workload(s, "W3") for s in ALL_SYSTEMS)


def test_w6_runs_on_every_configuration_with_conveyors_sdk() -> None:
    runs_w6 = [s.name for s in ALL_SYSTEMS if runs_workload(s, "W6")]
    assert runs_w6 == [
        "conveyor/zygote/conveyor-sdk/sqlite",
        "conveyor/zygote/conveyor-sdk/postgres",
        "conveyor/spawn/conveyor-sdk/sqlite",
        "conveyor/spawn/conveyor-sdk/postgres",
        "conveyor/zygote/conveyor-sdk/sqlite/no-sandbox",
        "conveyor/zygote/conveyor-sdk/postgres/no-sandbox",
    ]


def test_each_system_has_a_column_and_a_start_command() -> None:
    assert group_of("conveyor/spawn/render-sdk/sqlite") == "Conveyor spawn"
    assert group_of("conveyor/zygote/conveyor-sdk/sqlite/no-sandbox") == (
        "Conveyor zygote, no sandbox"
    )
    assert group_of("celery") == "Celery (prefork)"
    render = select_systems(["conveyor/spawn/render-sdk/sqlite"])[0]
    assert (render.start_command, render.workflow_folder) == (
        "render-workflows main:app",
        "render_sdk",
    )


def test_w7_runs_once_per_database_with_the_zygote_and_the_sandbox() -> None:
    runs_w7 = [s.name for s in ALL_SYSTEMS if runs_workload(s, "W7")]
    assert runs_w7 == [
        "conveyor/zygote/conveyor-sdk/sqlite",
        "conveyor/zygote/conveyor-sdk/postgres",
    ]
