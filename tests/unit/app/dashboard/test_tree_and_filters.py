"""Run trees from flat listings, and the runs filter form → RunFilter and keyset cursor."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.datastructures import QueryParams

from app.dashboard.run_filters import RunQuery
from app.dashboard.tree import build_tree
from core.domain import RunStatus
from core.ids import new_id
from tests.unit.app.app_fakes import make_run


def test_tree_nests_children_in_creation_order() -> None:
    root = make_run("trn-1")
    kids = [make_run(f"trn-{n}", parent_id="trn-1", root_id="trn-1") for n in (3, 2)]
    grandchild = make_run("trn-4", parent_id="trn-2", root_id="trn-1")
    tree = build_tree([grandchild, *kids, root], "trn-1")
    assert tree is not None
    assert [c.run.id for c in tree.children] == ["trn-2", "trn-3"]
    assert [g.run.id for g in tree.children[0].children] == ["trn-4"]
    assert tree.size() == 4


def test_orphans_hang_under_the_root_and_a_missing_root_is_none() -> None:
    root = make_run("trn-1")
    orphan = make_run("trn-9", parent_id="trn-gone", root_id="trn-1")
    tree = build_tree([root, orphan], "trn-1")
    assert tree is not None and [c.run.id for c in tree.children] == ["trn-9"]
    assert build_tree([orphan], "trn-1") is None


def test_filter_form_to_run_filter() -> None:
    query = RunQuery.parse(
        QueryParams(
            "status=failed&status=running&task=hello/square&workflow=wf-1&version=wfv-1"
            "&kind=roots&parent=trn-p"
        )
    )
    assert query.problems == []
    run_filter = query.run_filter()
    assert run_filter.status == (RunStatus.FAILED, RunStatus.RUNNING)
    assert run_filter.task_slugs == ("hello/square",)
    assert run_filter.workflow_ids == ("wf-1",)
    assert run_filter.version_ids == ("wfv-1",)
    assert run_filter.parent_id == "trn-p"
    assert run_filter.roots_only
    assert query.link(cursor="trn-x").startswith("/runs?status=failed&status=running&task=")


def test_children_only() -> None:
    run_filter = RunQuery.parse(QueryParams("kind=children")).run_filter()
    assert run_filter.children_only and not run_filter.roots_only


def test_bad_filters_are_reported() -> None:
    query = RunQuery.parse(QueryParams("status=nope&kind=odd&before=yesterday&cursor=abc"))
    assert len(query.problems) == 4


def test_created_before_is_a_keyset_cursor() -> None:
    query = RunQuery.parse(QueryParams("before=2026-01-02T03:04"))
    cursor = query.keyset_cursor()
    assert cursor is not None
    millis = int(datetime(2026, 1, 2, 3, 4, tzinfo=UTC).timestamp() * 1000)
    assert new_id("trn", now_ms=millis - 1) < cursor < new_id("trn", now_ms=millis)
    # An older page cursor wins over a later time bound.
    older = new_id("trn", now_ms=millis - 10_000)
    paged = RunQuery.parse(QueryParams(f"before=2026-01-02T03:04&cursor={older}"))
    assert paged.keyset_cursor() == older


def test_created_after_ends_the_listing() -> None:
    query = RunQuery.parse(QueryParams("after=2026-11-25T21:18"))
    early = make_run("trn-old", created_at=datetime(2026, 11, 25, 21, 0, tzinfo=UTC))
    late = make_run("trn-new")
    kept, reached = query.keep([late, early])
    assert [r.id for r in kept] == ["trn-new"] and reached
    assert query.keep([late]) == ([late], False)


@pytest.mark.parametrize(
    ("query_string", "kind", "roots_only"),
    [
        ("", "roots", True),
        ("status=failed", "roots", True),
        ("workflow=wf-1&version=wfv-1", "roots", True),
        ("kind=all", "all", False),
        ("task=hello/square", "all", False),
        ("parent=trn-p", "all", False),
        ("root=trn-r", "all", False),
        ("id=trn-1&id=trn-2", "all", False),
        ("task=hello/square&kind=roots", "roots", True),
    ],
)
def test_the_list_shows_roots_unless_the_query_names_children(
    query_string: str, kind: str, roots_only: bool
) -> None:
    query = RunQuery.parse(QueryParams(query_string))
    assert query.problems == []
    assert query.kind == kind
    assert query.run_filter().roots_only is roots_only


def test_links_keep_the_kind_only_when_it_is_not_the_default() -> None:
    assert RunQuery.parse(QueryParams("")).link() == "/runs"
    assert RunQuery.parse(QueryParams("")).link(kind="all") == "/runs?kind=all"
    assert RunQuery.parse(QueryParams("kind=all")).link() == "/runs?kind=all"
    assert RunQuery.parse(QueryParams("parent=trn-p")).link() == "/runs?parent=trn-p"
    assert RunQuery.parse(QueryParams("parent=trn-p&kind=roots")).link() == (
        "/runs?kind=roots&parent=trn-p"
    )
    assert RunQuery.parse(QueryParams("")).more_set == 0
    assert RunQuery.parse(QueryParams("kind=all")).more_set == 1


@pytest.mark.parametrize(
    ("query_string", "task_kind", "kinds"),
    [
        ("", "", ()),
        ("task_kind=flow", "flow", ("flow",)),
        ("task_kind=task", "task", ("task",)),
        ("task_kind=+flow+", "flow", ("flow",)),
        ("task_kind=", "", ()),
    ],
)
def test_runs_of_flows_or_of_tasks_only(
    query_string: str, task_kind: str, kinds: tuple[str]
) -> None:
    query = RunQuery.parse(QueryParams(query_string))
    assert query.problems == []
    assert query.task_kind == task_kind
    assert query.run_filter().kinds == kinds
    assert query.run_filter().roots_only  # the kind of task leaves roots-only as it was


def test_the_task_kind_is_kept_in_links_and_counted_as_set() -> None:
    flows = RunQuery.parse(QueryParams("status=running&task_kind=flow"))
    assert flows.link() == "/runs?status=running&task_kind=flow"
    assert flows.link(cursor="trn-9") == "/runs?status=running&task_kind=flow&cursor=trn-9"
    assert flows.link(task_kind="") == "/runs?status=running"
    assert RunQuery.parse(QueryParams("")).link(task_kind="flow") == "/runs?task_kind=flow"
    assert flows.more_set == 1
    assert RunQuery.parse(QueryParams("task_kind=task&kind=all")).more_set == 2
    children = RunQuery.parse(QueryParams("task_kind=flow&kind=children")).run_filter()
    assert (children.kinds, children.children_only, children.roots_only) == (
        ("flow",),
        True,
        False,
    )


def test_an_unknown_task_kind_is_a_problem() -> None:
    query = RunQuery.parse(QueryParams("task_kind=flows"))
    assert query.problems == ["unknown task kind 'flows': choose task or flow"]
