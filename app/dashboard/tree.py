"""A run tree (root → children → grandchildren) from the flat list of runs sharing a root."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from core.domain import RunInfo


@dataclass
class TreeNode:
    run: RunInfo
    children: list[TreeNode] = field(default_factory=list)

    def size(self) -> int:
        return 1 + sum(child.size() for child in self.children)


def build_tree(runs: Iterable[RunInfo], root_id: str) -> TreeNode | None:
    """Nest `runs` under their parents, children in creation order; None without the root.

    A run whose parent is missing (the listing was cut) hangs under the root, so nothing that
    was read is hidden.
    """
    by_id = {run.id: run for run in runs}
    root = by_id.get(root_id)
    if root is None:
        return None
    children: dict[str, list[RunInfo]] = defaultdict(list)
    for run in by_id.values():
        if run.id == root_id:
            continue
        parent = run.parent_id if run.parent_id in by_id else root_id
        children[parent or root_id].append(run)

    def node(run: RunInfo) -> TreeNode:
        kids = sorted(children.get(run.id, []), key=lambda r: r.id)
        return TreeNode(run, [node(kid) for kid in kids])

    return node(root)
