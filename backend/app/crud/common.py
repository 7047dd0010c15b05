"""Helpers every crud module uses: conflicts, pages, text search, rows by id, versioned writes.

Statements are built once, with named parameters (`sa.bindparam`), and run with their
values: SQLAlchemy then reuses their compiled form and their cache key (a statement built
per request is walked again on every run to compute its key).
"""

import functools
import uuid
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.models import utc_now

T = TypeVar("T")
Row = TypeVar("Row", bound=SQLModel)  # a table model


def violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint behind an asyncpg IntegrityError."""
    return getattr(exc.orig.__cause__, "constraint_name", None) if exc.orig else None


async def commit_or_conflict(session: AsyncSession, *constraints: str) -> bool:
    """Commit; on a violation of one of `constraints`, roll back and return False."""
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        if violated_constraint(exc) in constraints:
            return False
        raise
    return True


# Bounded: a statement built per call (allowed, only slower) must not pile up here.
@functools.lru_cache(maxsize=512)
def _paged(statement: SelectOfScalar[Any]) -> tuple[SelectOfScalar[Any], SelectOfScalar[int]]:
    """The page of `statement` (offset and limit as parameters) and its count."""
    paged = statement.offset(sa.bindparam("page_skip", type_=sa.BigInteger)).limit(
        sa.bindparam("page_limit", type_=sa.Integer)
    )
    count = select(func.count()).select_from(statement.order_by(None).subquery())
    return paged, count


async def page(
    session: AsyncSession,
    statement: SelectOfScalar[T],
    *,
    skip: int,
    limit: int,
    params: dict[str, Any] | None = None,
) -> tuple[list[T], int]:
    """The rows of a page and the total matching the same filters (`params`: the values
    of the statement's own parameters).

    One query for the page; a second counts only when the page cannot tell the total (it
    is full, or empty past the start): a short page ends the list, so it knows its count.
    """
    paged, count = _paged(statement)
    values = params or {}
    result = await session.exec(paged, params={**values, "page_skip": skip, "page_limit": limit})
    rows = list(result.all())
    if len(rows) < limit and (rows or skip == 0):
        return rows, skip + len(rows)
    return rows, (await session.exec(count, params=values)).one()


def contains(column: Any, text: str | sa.BindParameter[str]) -> Any:
    """Case-insensitive substring match with `%`, `_` and `\\` taken literally; for a
    parameter, its value is `like_pattern(text)`."""
    if isinstance(text, sa.BindParameter):
        return col(column).ilike(text, escape="\\")
    return col(column).ilike(like_pattern(text), escape="\\")


def like_pattern(text: str) -> str:
    """The ILIKE pattern of `contains`: `%`, `_` and `\\` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@functools.cache
def _row_by_id(model: Any, in_tenant: bool) -> SelectOfScalar[Any]:
    statement = select(model).where(model.id == sa.bindparam("row_id"))
    if in_tenant:
        statement = statement.where(model.tenant_id == sa.bindparam("tenant_id"))
    return statement


async def get_row(
    *, session: AsyncSession, model: type[Row], tenant_id: uuid.UUID | None, row_id: uuid.UUID
) -> Row | None:
    """A tenant-owned row by id, in `tenant_id` (None: any tenant, a superuser's scope)."""
    statement = _row_by_id(model, tenant_id is not None)
    params = {"row_id": row_id, "tenant_id": tenant_id}
    row: Row | None = (await session.exec(statement, params=params)).first()
    return row


@functools.cache
def _versioned_update(model: Any, fields: tuple[str, ...], guarded: bool) -> Any:
    statement = (
        sa.update(model)
        .where(model.id == sa.bindparam("row_id"), model.tenant_id == sa.bindparam("row_tenant"))
        .values(
            {name: sa.bindparam(f"new_{name}") for name in fields}
            | {"version": model.version + 1, "updated_at": sa.bindparam("new_updated_at")}
        )
        .returning(model)
    )
    if guarded:
        statement = statement.where(model.version == sa.bindparam("expected_version"))
    return statement


async def update_versioned(
    *, session: AsyncSession, row: T, data: dict[str, Any], expected_version: int | None
) -> T | None:
    """Apply `data` and bump `version` in one UPDATE, guarded by the version when given.

    None means the guard failed: someone else changed the row first. An IntegrityError
    (e.g. a duplicate name) propagates after the rollback. An empty `data` writes nothing,
    so it bumps nothing: it only checks the version.
    """
    current: Any = row
    if not data:
        return row if expected_version in (None, current.version) else None
    model: Any = type(row)
    statement = _versioned_update(model, tuple(sorted(data)), expected_version is not None)
    params = {f"new_{name}": value for name, value in data.items()} | {
        "new_updated_at": utc_now(),
        "row_id": current.id,
        "row_tenant": current.tenant_id,
        "expected_version": expected_version,
    }
    try:
        result = await session.exec(
            statement,
            params=params,
            execution_options={"populate_existing": True, "synchronize_session": False},
        )
        updated: T | None = result.scalars().one_or_none()
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise
    return updated


@functools.cache
def _versioned_delete(model: Any, guarded: bool) -> Any:
    statement = sa.delete(model).where(
        model.id == sa.bindparam("row_id"), model.tenant_id == sa.bindparam("row_tenant")
    )
    if guarded:
        statement = statement.where(model.version == sa.bindparam("expected_version"))
    return statement.returning(model.id)


async def delete_versioned(
    *, session: AsyncSession, row: Any, expected_version: int | None
) -> bool:
    """Delete a row, guarded by its version when given; False when the guard failed."""
    model: Any = type(row)
    statement = _versioned_delete(model, expected_version is not None)
    params = {"row_id": row.id, "row_tenant": row.tenant_id, "expected_version": expected_version}
    result = await session.exec(
        statement, params=params, execution_options={"synchronize_session": False}
    )
    deleted = result.first() is not None
    await session.commit()
    return deleted
