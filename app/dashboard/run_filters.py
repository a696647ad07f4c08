"""The runs list's filter form (query string) → the engine's RunFilter and a keyset cursor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from core.domain import RunFilter, RunInfo, RunStatus
from core.ids import new_id

KINDS = ("all", "roots", "children")
TASK_KINDS = ("task", "flow")  # "" for both
MAX_IDS = 100
_TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


@dataclass
class RunQuery:
    """What the filter form asked for, as typed (so the form can show it back)."""

    statuses: list[str] = field(default_factory=list)
    task: str = ""
    workflow: str = ""
    version: str = ""
    kind: str = ""  # "" until parsed: then the one asked for, or `default_kind`
    task_kind: str = ""  # runs of tasks of this kind only (TASK_KINDS); "": tasks and flows
    parent: str = ""
    root: str = ""
    before: str = ""
    after: str = ""
    cursor: str = ""
    ids: list[str] = field(default_factory=list)  # only these runs
    problems: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, params: QueryParams) -> RunQuery:
        query = cls(
            statuses=params.getlist("status"),
            task=params.get("task", "").strip(),
            workflow=params.get("workflow", "").strip(),
            version=params.get("version", "").strip(),
            kind=params.get("kind", "").strip(),
            task_kind=params.get("task_kind", "").strip(),
            parent=params.get("parent", "").strip(),
            root=params.get("root", "").strip(),
            before=params.get("before", "").strip(),
            after=params.get("after", "").strip(),
            cursor=params.get("cursor", "").strip(),
            ids=[i.strip() for i in params.getlist("id") if i.strip()][:MAX_IDS],
        )
        query.kind = query.kind or query.default_kind
        query.validate()
        return query

    @property
    def default_kind(self) -> str:
        """Roots, unless the query names runs that may be children (a task, a parent, a tree,
        ids): the list is one line per thing someone started, children a click away."""
        return "all" if (self.task or self.parent or self.root or self.ids) else "roots"

    def validate(self) -> None:
        allowed = {s.value for s in RunStatus}
        for status in self.statuses:
            if status not in allowed:
                self.problems.append(f"unknown status {status!r}")
        if self.kind not in KINDS:
            self.problems.append(f"unknown kind {self.kind!r}: choose all, roots or children")
        if self.task_kind and self.task_kind not in TASK_KINDS:
            self.problems.append(f"unknown task kind {self.task_kind!r}: choose task or flow")
        for name, value in (("created before", self.before), ("created after", self.after)):
            if value and parse_time(value) is None:
                self.problems.append(f"{name}: {value!r} is not a date and time (UTC)")
        if self.cursor and not self.cursor.startswith("trn-"):
            self.problems.append("the page cursor is not a run id")
        for run_id in self.ids:
            if not run_id.startswith("trn-"):
                self.problems.append(f"{run_id!r} is not a run id")

    @property
    def more_set(self) -> int:
        """How many filters besides the statuses are set (they live under "More filters")."""
        values = (
            self.task,
            self.workflow,
            self.version,
            self.task_kind,
            self.parent,
            self.before,
            self.after,
        )
        return sum(1 for v in values if v) + (self.kind != self.default_kind)

    @property
    def first_page(self) -> bool:
        return not self.cursor and not self.before

    def run_filter(self) -> RunFilter:
        return RunFilter(
            status=tuple(RunStatus(s) for s in dict.fromkeys(self.statuses)),
            task_slugs=(self.task,) if self.task else (),
            workflow_ids=(self.workflow,) if self.workflow else (),
            version_ids=(self.version,) if self.version else (),
            root_ids=(self.root,) if self.root else (),
            parent_id=self.parent or None,
            roots_only=self.kind == "roots",
            children_only=self.kind == "children",
            run_ids=tuple(self.ids),
            kinds=(self.task_kind,) if self.task_kind else (),
        )

    def keyset_cursor(self) -> str | None:
        """Ids sort by creation time, so "created before T" is the cursor of T's first id."""
        bounds = [self.cursor] if self.cursor else []
        before = parse_time(self.before) if self.before else None
        if before is not None:
            # Only the id's time part: every run created at or after T sorts above it.
            bounds.append(new_id("trn", now_ms=int(before.timestamp() * 1000))[:14])
        return min(bounds) if bounds else None

    def keep(self, runs: list[RunInfo]) -> tuple[list[RunInfo], bool]:
        """The runs not older than `after`; True once an older one showed (no page after)."""
        after = parse_time(self.after) if self.after else None
        if after is None:
            return runs, False
        kept = [run for run in runs if _aware(run.created_at) >= after]
        return kept, len(kept) < len(runs)

    def link(self, **changes: str) -> str:
        """This query's URL with `changes` applied (e.g. another cursor)."""
        pairs = [("status", s) for s in self.statuses] + [("id", i) for i in self.ids]
        values = {
            "task": self.task,
            "workflow": self.workflow,
            "version": self.version,
            "kind": "" if self.kind == self.default_kind else self.kind,
            "task_kind": self.task_kind,
            "parent": self.parent,
            "root": self.root,
            "before": self.before,
            "after": self.after,
            "cursor": self.cursor,
        }
        values.update(changes)
        pairs += [(k, v) for k, v in values.items() if v]
        return "/runs" + (f"?{urlencode(pairs)}" if pairs else "")


def parse_time(text: str) -> datetime | None:
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
