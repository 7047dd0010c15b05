"""Tasks."""

import functools
import uuid
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.crud.common import Query, columns_of, contains, like_pattern, param
from app.crud.users import CALLER_FIELDS, caller_statement
from app.models import (
    Task,
    TaskCreate,
    TaskStatus,
    User,
    utc_now,
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


# Fast paths on a plain connection (see crud.common.Query): rows as dicts of TaskPublic's
# fields, statements compiled once per shape.

TASK_COLUMNS = columns_of(Task)
TASK_FIELDS = tuple(column.name for column in TASK_COLUMNS)
_task = Task.__table__  # type: ignore[attr-defined]
_user = User.__table__  # type: ignore[attr-defined]
_CALLER_WIDTH = len(CALLER_FIELDS)
_TASK_ID_AT = _CALLER_WIDTH + TASK_FIELDS.index("id")  # NULL: no such task in the tenant

CALLER_AND_TASK = Query(
    caller_statement(
        *TASK_COLUMNS,
        outerjoin=(
            _task,
            sa.and_(_task.c.id == param("task_id"), _task.c.tenant_id == _user.c.tenant_id),
        ),
    )
)
TASK_BY_ID = Query(sa.select(*TASK_COLUMNS).where(_task.c.id == param("task_id")))
TASK_INSERT = Query(sa.insert(_task).values({name: param(f"v_{name}") for name in TASK_FIELDS}))


async def fetch_caller_and_task(
    *,
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    login_id: uuid.UUID,
    task_id: uuid.UUID,
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """In one statement, the caller (as `fetch_caller`) and the task if it is in the
    caller's tenant; None when the token no longer stands for a caller."""
    row = await CALLER_AND_TASK.fetchrow(
        conn, tenant_id=tenant_id, user_id=user_id, login_id=login_id, task_id=task_id
    )
    if row is None:
        return None
    values = tuple(row)
    caller = dict(zip(CALLER_FIELDS, values[:_CALLER_WIDTH], strict=True))
    if values[_TASK_ID_AT] is None:
        return caller, None
    return caller, dict(zip(TASK_FIELDS, values[_CALLER_WIDTH:], strict=True))


async def fetch_task(*, conn: asyncpg.Connection, task_id: uuid.UUID) -> dict[str, Any] | None:
    """A task of any tenant (a superuser's scope)."""
    row = await TASK_BY_ID.fetchrow(conn, task_id=task_id)
    return None if row is None else dict(zip(TASK_FIELDS, row, strict=True))


@functools.cache
def _task_page_queries(filters: frozenset[str], sort: str) -> tuple[Query, Query]:
    """The page and the count of `tasks_statement` for one set of filters and one sort."""
    statement = tasks_statement(
        tenant_id=param("tenant_id") if "tenant_id" in filters else None,
        project_id=param("project_id") if "project_id" in filters else None,
        status=param("status") if "status" in filters else None,
        assignee_id=param("assignee_id") if "assignee_id" in filters else None,
        q=param("q") if "q" in filters else None,
        sort=sort,
    ).with_only_columns(*TASK_COLUMNS)
    paged = statement.offset(sa.bindparam("skip", type_=sa.BigInteger)).limit(
        sa.bindparam("limit", type_=sa.Integer)
    )
    count = sa.select(sa.func.count()).select_from(statement.order_by(None).subquery())
    return Query(paged), Query(count)


async def list_tasks(
    *,
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID | None,
    project_id: uuid.UUID | None,
    status: TaskStatus | None,
    assignee_id: uuid.UUID | None,
    q: str | None,
    sort: str,
    skip: int,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of tasks and the total matching the same filters (see `page`)."""
    filters = {
        "tenant_id": tenant_id,
        "project_id": project_id,
        "status": status,
        "assignee_id": assignee_id,
        "q": like_pattern(q) if q else None,
    }
    present = {name: value for name, value in filters.items() if value is not None}
    page_query, count_query = _task_page_queries(frozenset(present), sort)
    rows = await page_query.fetch(conn, **present, skip=skip, limit=limit)
    data = [dict(zip(TASK_FIELDS, row, strict=True)) for row in rows]
    if len(rows) < limit and (rows or skip == 0):
        return data, skip + len(rows)
    return data, await count_query.fetchval(conn, **present)


async def create_task(
    *, conn: asyncpg.Connection, tenant_id: uuid.UUID, task_in: TaskCreate
) -> dict[str, Any]:
    """Create a task in one INSERT; a project or assignee outside the tenant fails the
    composite foreign keys with asyncpg's ForeignKeyViolationError."""
    now = utc_now()
    task = task_in.model_dump()
    task.update(id=uuid.uuid4(), tenant_id=tenant_id, created_at=now, updated_at=now, version=1)
    await conn.execute(TASK_INSERT.sql, *TASK_INSERT.args({f"v_{k}": v for k, v in task.items()}))
    return task


@functools.cache
def _task_update_query(fields: tuple[str, ...], guarded: bool) -> Query:
    statement = (
        sa.update(_task)
        .where(_task.c.id == param("task_id"), _task.c.tenant_id == param("tenant_id"))
        .values(
            {name: param(f"v_{name}") for name in fields}
            | {"version": _task.c.version + 1, "updated_at": param("v_updated_at")}
        )
        .returning(*TASK_COLUMNS)
    )
    if guarded:
        statement = statement.where(_task.c.version == param("expected_version"))
    return Query(statement)


async def update_task_row(
    *,
    conn: asyncpg.Connection,
    task: dict[str, Any],
    data: dict[str, Any],
    expected_version: int | None,
) -> dict[str, Any] | None:
    """Apply `data` and bump `version` in one UPDATE, guarded by the version when given: None when the version guard failed or
    the row is gone; an empty `data` only checks the version."""
    if not data:
        return task if expected_version in (None, task["version"]) else None
    query = _task_update_query(tuple(sorted(data)), expected_version is not None)
    values = {f"v_{name}": value for name, value in data.items()}
    row = await query.fetchrow(
        conn,
        **values,
        v_updated_at=utc_now(),
        task_id=task["id"],
        tenant_id=task["tenant_id"],
        expected_version=expected_version,
    )
    return None if row is None else dict(zip(TASK_FIELDS, row, strict=True))


ACTIVE_USER_OF_TENANT = Query(
    sa.select(
        sa.exists().where(
            _user.c.id == param("user_id"),
            _user.c.tenant_id == param("tenant_id"),
            _user.c.is_active,
        )
    )
)


async def is_active_user_of_tenant(
    *, conn: asyncpg.Connection, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    return bool(await ACTIVE_USER_OF_TENANT.fetchval(conn, tenant_id=tenant_id, user_id=user_id))
