"""Projects."""

import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.crud.common import commit_or_conflict, contains, page
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


async def get_project(
    *, session: AsyncSession, tenant_id: uuid.UUID | None, project_id: uuid.UUID
) -> Project | None:
    statement = select(Project).where(Project.id == project_id)
    if tenant_id is not None:
        statement = statement.where(Project.tenant_id == tenant_id)
    return (await session.exec(statement)).first()


async def list_projects(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    q: str | None,
    sort: str,
    skip: int,
    limit: int,
) -> tuple[list[Project], int]:
    statement = select(Project).order_by(PROJECT_SORTS[sort], col(Project.id))
    if tenant_id is not None:
        statement = statement.where(Project.tenant_id == tenant_id)
    if q:
        statement = statement.where(contains(Project.name, q))
    return await page(session, statement, skip=skip, limit=limit)


async def create_project(
    *, session: AsyncSession, tenant_id: uuid.UUID, project_in: ProjectCreate
) -> Project | None:
    """Create a project; None when the tenant already has one of that name."""
    project = Project.model_validate(project_in, update={"tenant_id": tenant_id})
    session.add(project)
    return project if await commit_or_conflict(session, "uq_project_tenant_id_name") else None
