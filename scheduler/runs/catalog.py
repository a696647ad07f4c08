"""Tasks, workflows and versions with the filters and pages of Render's list calls.

Every filter is a tuple matching any of its values (Render's clients send lists); every list is a
page of at most `limit` items after `cursor`, the last id of the previous page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, or_, select

from core.domain import Page, TaskInfo, VersionInfo, WorkflowInfo
from core.errors import NotFound
from scheduler.runs.reads import versions, versions_of
from scheduler.runs.rows import task_info, tasks, workflow_info, workflows


@dataclass(frozen=True)
class TaskFilter:
    """Tasks of the active versions, or of the given versions when `version_ids` is set."""

    task_slugs: tuple[str, ...] = ()  # "wf/task" or a bare task name
    workflow_ids: tuple[str, ...] = ()
    version_ids: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()  # "task", "flow"
    task_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkflowFilter:
    names: tuple[str, ...] = ()  # a workflow's name or slug
    workflow_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class VersionFilter:
    workflow_ids: tuple[str, ...] = ()
    version_ids: tuple[str, ...] = ()


def list_tasks(
    conn: Connection, workspace_id: str, task_filter: TaskFilter, cursor: str | None, limit: int
) -> Page[TaskInfo]:
    query = (
        select(tasks, workflows.c.slug)
        .join(workflows, workflows.c.id == tasks.c.workflow_id)
        .where(workflows.c.workspace_id == workspace_id)
        .order_by(tasks.c.id)
        .limit(limit + 1)
    )
    if task_filter.version_ids:
        query = query.where(tasks.c.version_id.in_(task_filter.version_ids))
    else:
        query = query.where(tasks.c.version_id == workflows.c.active_version_id)
    if task_filter.workflow_ids:
        query = query.where(tasks.c.workflow_id.in_(task_filter.workflow_ids))
    if task_filter.kinds:
        query = query.where(tasks.c.kind.in_(task_filter.kinds))
    if task_filter.task_ids:
        query = query.where(tasks.c.id.in_(task_filter.task_ids))
    if task_filter.task_slugs:
        by_slug = []
        for task_slug in task_filter.task_slugs:
            slug, _, name = task_slug.rpartition("/")
            condition = tasks.c.name == name
            by_slug.append(and_(condition, workflows.c.slug == slug) if slug else condition)
        query = query.where(or_(*by_slug))
    if cursor:
        query = query.where(tasks.c.id > cursor)
    rows = conn.execute(query).all()
    items = [task_info(row, row.slug) for row in rows[:limit]]
    return Page(items, items[-1].id if len(rows) > limit and items else None)


def list_workflows(
    conn: Connection,
    workspace_id: str,
    workflow_filter: WorkflowFilter,
    cursor: str | None,
    limit: int,
) -> Page[WorkflowInfo]:
    query = (
        select(workflows)
        .where(workflows.c.workspace_id == workspace_id)
        .order_by(workflows.c.id)
        .limit(limit + 1)
    )
    if workflow_filter.names:
        names = workflow_filter.names
        query = query.where(or_(workflows.c.name.in_(names), workflows.c.slug.in_(names)))
    if workflow_filter.workflow_ids:
        query = query.where(workflows.c.id.in_(workflow_filter.workflow_ids))
    if cursor:
        query = query.where(workflows.c.id > cursor)
    rows = conn.execute(query).all()
    items = [workflow_info(row) for row in rows[:limit]]
    return Page(items, items[-1].id if len(rows) > limit and items else None)


def list_versions(
    conn: Connection,
    workspace_id: str,
    version_filter: VersionFilter,
    cursor: str | None,
    limit: int,
) -> Page[VersionInfo]:
    """Newest first."""
    query = (
        select(versions.c.id)
        .join(workflows, workflows.c.id == versions.c.workflow_id)
        .where(workflows.c.workspace_id == workspace_id)
        .order_by(versions.c.id.desc())
        .limit(limit + 1)
    )
    if version_filter.workflow_ids:
        query = query.where(versions.c.workflow_id.in_(version_filter.workflow_ids))
    if version_filter.version_ids:
        query = query.where(versions.c.id.in_(version_filter.version_ids))
    if cursor:
        query = query.where(versions.c.id < cursor)
    ids = list(conn.scalars(query))
    items = versions_of(workspace_id, None, conn, version_ids=ids[:limit])
    return Page(items, items[-1].id if len(ids) > limit and items else None)


def get_version(conn: Connection, workspace_id: str, version_id: str) -> VersionInfo:
    found = versions_of(workspace_id, None, conn, version_ids=[version_id])
    if not found:
        raise NotFound(f"workflow version {version_id} not found")
    return found[0]
