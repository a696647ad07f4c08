"""The bench keeps its last four invocations' folders, and prunes only once it has measured."""

from __future__ import annotations

from pathlib import Path

from bench.targets import Place

OLDER = [
    "20261201-100000-11",
    "20261202-100000-12",
    "20261203-100000-13",
    "20261204-100000-14",
    "20261205-100000-15",
]


def test_creating_a_place_deletes_nothing_and_pruning_keeps_the_last_four(tmp_path: Path) -> None:
    for name in [*OLDER, "notes", "2026-not-an-invocation"]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "conveyor.log").write_text("kept until pruned")
    place = Place.create(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= set(OLDER), "nothing deleted before measuring"

    place.prune()

    left = sorted(p.name for p in tmp_path.iterdir())
    expected = [
        "20261203-100000-13",
        "20261204-100000-14",
        "20261205-100000-15",
        place.root.name,
        "2026-not-an-invocation",
        "notes",
    ]
    assert left == sorted(expected)
