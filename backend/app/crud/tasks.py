"""Tasks."""

import functools
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.crud.common import contains, like_pattern, page
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


def tasks_statement(
    *,
    tenant_id: uuid.UUID | sa.BindParameter[Any] | None,
    project_id: uuid.UUID | sa.BindParameter[Any] | None,
    status: TaskStatus | sa.BindParameter[Any] | None,
    assignee_id: uuid.UUID | sa.BindParameter[Any] | None,
    q: str | sa.BindParameter[Any] | None,
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
    if isinstance(q, sa.BindParameter) or q:
        statement = statement.where(contains(Task.title, q))
    return statement


@functools.cache
def _tasks_list(filters: frozenset[str], sort: str) -> SelectOfScalar[Task]:
    """`tasks_statement` for one set of filters and one sort, with its values as parameters."""
    return tasks_statement(
        **{
            name: sa.bindparam(name) if name in filters else None
            for name in ("tenant_id", "project_id", "status", "assignee_id", "q")
        },
        sort=sort,
    )


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
    """A page of tasks and the total matching the same filters (see `page`)."""
    filters = {
        "tenant_id": tenant_id,
        "project_id": project_id,
        "status": status,
        "assignee_id": assignee_id,
        "q": like_pattern(q) if q else None,
    }
    params = {name: value for name, value in filters.items() if value is not None}
    statement = _tasks_list(frozenset(params), sort)
    return await page(session, statement, skip=skip, limit=limit, params=params)


async def create_task(*, session: AsyncSession, tenant_id: uuid.UUID, task_in: TaskCreate) -> Task:
    """Create a task; a project or assignee outside the tenant fails the composite foreign
    keys (IntegrityError, rolled back)."""
    task = Task.model_validate(task_in, update={"tenant_id": tenant_id})
    session.add(task)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise
    return task


_ACTIVE_USER_OF_TENANT = (
    select(User.id)
    .where(
        User.id == sa.bindparam("user_id"),
        User.tenant_id == sa.bindparam("tenant_id"),
        col(User.is_active),
    )
    # Kept until the task is written: deactivating the user waits for this transaction.
    .with_for_update(read=True)
)


async def is_active_user_of_tenant(
    *, session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    """Whether the user is an active user of the tenant, held so until the transaction ends."""
    params = {"tenant_id": tenant_id, "user_id": user_id}
    return (await session.exec(_ACTIVE_USER_OF_TENANT, params=params)).first() is not None
