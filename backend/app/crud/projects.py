"""Projects."""

import functools
import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.crud.common import commit_or_conflict, contains, like_pattern, page
from app.models import (
    Project,
    ProjectCreate,
)

PROJECT_SORTS: dict[str, sa.UnaryExpression[Any]] = {
    "created_at": col(Project.created_at).asc(),
    "-created_at": col(Project.created_at).desc(),
    "name": col(Project.name).asc(),
    "-name": col(Project.name).desc(),
}


@functools.cache
def _projects_list(filters: frozenset[str], sort: str) -> SelectOfScalar[Project]:
    statement = select(Project).order_by(PROJECT_SORTS[sort], col(Project.id))
    if "tenant_id" in filters:
        statement = statement.where(Project.tenant_id == sa.bindparam("tenant_id"))
    if "q" in filters:
        statement = statement.where(contains(Project.name, sa.bindparam("q")))
    return statement


async def list_projects(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    q: str | None,
    sort: str,
    skip: int,
    limit: int,
) -> tuple[list[Project], int]:
    filters = {"tenant_id": tenant_id, "q": like_pattern(q) if q else None}
    params = {name: value for name, value in filters.items() if value is not None}
    statement = _projects_list(frozenset(params), sort)
    return await page(session, statement, skip=skip, limit=limit, params=params)


async def create_project(
    *, session: AsyncSession, tenant_id: uuid.UUID, project_in: ProjectCreate
) -> Project | None:
    """Create a project; None when the tenant already has one of that name."""
    project = Project.model_validate(project_in, update={"tenant_id": tenant_id})
    session.add(project)
    return project if await commit_or_conflict(session, "uq_project_tenant_id_name") else None
