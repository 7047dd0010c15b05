"""Tasks."""

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.crud.common import contains, page
from app.models import (
    Task,
    TaskCreate,
    TaskStatus,
    User,
)

TASK_SORTS: dict[str, sa.UnaryExpression[Any]] = {
    "created_at": col(Task.created_at).asc(),
    "-created_at": col(Task.created_at).desc(),
    "title": col(Task.title).asc(),
    "-title": col(Task.title).desc(),
    "due_date": col(Task.due_date).asc().nulls_last(),
    "-due_date": col(Task.due_date).desc().nulls_last(),
}


async def get_task(
    *, session: AsyncSession, tenant_id: uuid.UUID | None, task_id: uuid.UUID
) -> Task | None:
    statement = select(Task).where(Task.id == task_id)
    if tenant_id is not None:
        statement = statement.where(Task.tenant_id == tenant_id)
    return (await session.exec(statement)).first()


async def list_tasks(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    project_id: uuid.UUID | None,
    status: TaskStatus | None,
    assignee_id: uuid.UUID | None,
    q: str | None,
    sort: str,
    skip: int,
    limit: int,
) -> tuple[list[Task], int]:
    statement = tasks_statement(
        tenant_id=tenant_id,
        project_id=project_id,
        status=status,
        assignee_id=assignee_id,
        q=q,
        sort=sort,
    )
    return await page(session, statement, skip=skip, limit=limit)


def tasks_statement(
    *,
    tenant_id: uuid.UUID | None,
    project_id: uuid.UUID | None,
    status: TaskStatus | None,
    assignee_id: uuid.UUID | None,
    q: str | None,
    sort: str,
) -> SelectOfScalar[Task]:
    """The filtered, sorted task list before paging (tests EXPLAIN it)."""
    statement = select(Task).order_by(TASK_SORTS[sort], col(Task.id))
    if tenant_id is not None:
        statement = statement.where(Task.tenant_id == tenant_id)
    if project_id is not None:
        statement = statement.where(Task.project_id == project_id)
    if status is not None:
        statement = statement.where(Task.status == status)
    if assignee_id is not None:
        statement = statement.where(Task.assignee_id == assignee_id)
    if q:
        statement = statement.where(contains(Task.title, q))
    return statement


async def is_active_user_of_tenant(
    *, session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    statement = select(User.id).where(
        User.id == user_id, User.tenant_id == tenant_id, col(User.is_active)
    )
    return (await session.exec(statement)).first() is not None


async def create_task(*, session: AsyncSession, tenant_id: uuid.UUID, task_in: TaskCreate) -> Task:
    """Create a task. A project or assignee outside the tenant fails the composite foreign
    keys: the IntegrityError propagates after the rollback."""
    task = Task.model_validate(task_in, update={"tenant_id": tenant_id})
    session.add(task)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise
    return task
