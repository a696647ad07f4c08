"""Read side of tasks, workflows and versions, with the filters and pages of Render's list calls.

Every filter is a tuple matching any of its values (Render's clients send lists); every list is a
page of at most `limit` items after `cursor`, the last id of the previous page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Task, Workflow, WorkflowVersion
from core.domain import Page, TaskInfo, VersionInfo, WorkflowInfo
from core.errors import NotFound
from scheduler import queries


@dataclass(frozen=True)
class TaskFilter:
    """Tasks of the active versions, or of the given versions when `version_ids` is set."""

    task_slugs: tuple[str, ...] = ()  # "wf/task" or a bare task name
    workflow_ids: tuple[str, ...] = ()
    version_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkflowFilter:
    names: tuple[str, ...] = ()  # a workflow's name or slug
    workflow_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class VersionFilter:
    workflow_ids: tuple[str, ...] = ()
    version_ids: tuple[str, ...] = ()


async def list_tasks(
    session: AsyncSession,
    workspace_id: str,
    task_filter: TaskFilter,
    cursor: str | None,
    limit: int,
) -> Page[TaskInfo]:
    query = (
        select(Task, Workflow.slug)
        .join(Workflow, Workflow.id == Task.workflow_id)
        .where(Workflow.workspace_id == workspace_id)
        .order_by(Task.id)
        .limit(limit + 1)
    )
    if task_filter.version_ids:
        query = query.where(Task.version_id.in_(task_filter.version_ids))
    else:
        query = query.where(Task.version_id == Workflow.active_version_id)
    if task_filter.workflow_ids:
        query = query.where(Task.workflow_id.in_(task_filter.workflow_ids))
    if task_filter.task_slugs:
        by_slug = []
        for task_slug in task_filter.task_slugs:
            slug, _, name = task_slug.rpartition("/")
            condition = Task.name == name
            by_slug.append(and_(condition, Workflow.slug == slug) if slug else condition)
        query = query.where(or_(*by_slug))
    if cursor:
        query = query.where(Task.id > cursor)
    rows = (await session.execute(query)).all()
    items = [queries.task_info(task, slug) for task, slug in rows[:limit]]
    return Page(items, items[-1].id if len(rows) > limit and items else None)


async def list_workflows(
    session: AsyncSession,
    workspace_id: str,
    workflow_filter: WorkflowFilter,
    cursor: str | None,
    limit: int,
) -> Page[WorkflowInfo]:
    query = (
        select(Workflow)
        .where(Workflow.workspace_id == workspace_id)
        .order_by(Workflow.id)
        .limit(limit + 1)
    )
    if workflow_filter.names:
        names = workflow_filter.names
        query = query.where(or_(Workflow.name.in_(names), Workflow.slug.in_(names)))
    if workflow_filter.workflow_ids:
        query = query.where(Workflow.id.in_(workflow_filter.workflow_ids))
    if cursor:
        query = query.where(Workflow.id > cursor)
    rows = list(await session.scalars(query))
    items = [queries.workflow_info(row) for row in rows[:limit]]
    return Page(items, items[-1].id if len(rows) > limit and items else None)


async def list_versions(
    session: AsyncSession,
    workspace_id: str,
    version_filter: VersionFilter,
    cursor: str | None,
    limit: int,
) -> Page[VersionInfo]:
    """Newest first."""
    query = (
        select(WorkflowVersion.id)
        .join(Workflow, Workflow.id == WorkflowVersion.workflow_id)
        .where(Workflow.workspace_id == workspace_id)
        .order_by(WorkflowVersion.id.desc())
        .limit(limit + 1)
    )
    if version_filter.workflow_ids:
        query = query.where(WorkflowVersion.workflow_id.in_(version_filter.workflow_ids))
    if version_filter.version_ids:
        query = query.where(WorkflowVersion.id.in_(version_filter.version_ids))
    if cursor:
        query = query.where(WorkflowVersion.id < cursor)
    ids = list(await session.scalars(query))
    items = await queries.version_infos(session, workspace_id, None, version_ids=ids[:limit])
    return Page(items, items[-1].id if len(ids) > limit and items else None)


async def get_version(session: AsyncSession, workspace_id: str, version_id: str) -> VersionInfo:
    found = await queries.version_infos(session, workspace_id, None, version_ids=[version_id])
    if not found:
        raise NotFound(f"workflow version {version_id} not found")
    return found[0]
