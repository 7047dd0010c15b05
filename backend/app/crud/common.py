"""Helpers every crud module uses: conflicts, pages, text search, versioned writes."""

from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.models import (
    utc_now,
)

T = TypeVar("T")


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


async def page(
    session: AsyncSession, statement: SelectOfScalar[T], *, skip: int, limit: int
) -> tuple[list[T], int]:
    """The rows of a page and the total matching the same filters.

    One query for the page; a second counts only when the page cannot tell the total (it
    is full, or empty past the start): a short page ends the list, so it knows its count.
    """
    rows = list((await session.exec(statement.offset(skip).limit(limit))).all())
    if len(rows) < limit and (rows or skip == 0):
        return rows, skip + len(rows)
    count_statement = select(func.count()).select_from(statement.order_by(None).subquery())
    return rows, (await session.exec(count_statement)).one()


def contains(column: Any, text: str) -> Any:
    """Case-insensitive substring match with `%`, `_` and `\\` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return col(column).ilike(f"%{escaped}%", escape="\\")


async def update_versioned(
    *, session: AsyncSession, row: T, data: dict[str, Any], expected_version: int | None
) -> T | None:
    """Apply `data` and bump `version` in one UPDATE, guarded by the version when given.

    None means the guard failed: someone else changed the row first. An IntegrityError
    (e.g. a duplicate name) propagates after the rollback. An empty `data` writes nothing,
    so it bumps nothing: it only checks the version.
    """
    model: Any = type(row)
    if not data:
        current: int = row.version  # type: ignore[attr-defined]
        return row if expected_version in (None, current) else None
    statement = (
        sa.update(model)
        .where(model.id == row.id, model.tenant_id == row.tenant_id)  # type: ignore[attr-defined]
        .values(**data, version=model.version + 1, updated_at=utc_now())
        .returning(model)
    )
    if expected_version is not None:
        statement = statement.where(model.version == expected_version)
    try:
        result = await session.exec(statement, execution_options={"populate_existing": True})
        updated: T | None = result.scalars().one_or_none()
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise
    return updated


async def delete_versioned(
    *, session: AsyncSession, row: Any, expected_version: int | None
) -> bool:
    """Delete a row, guarded by its version when given; False when the guard failed."""
    model: Any = type(row)
    statement = sa.delete(model).where(model.id == row.id, model.tenant_id == row.tenant_id)
    if expected_version is not None:
        statement = statement.where(model.version == expected_version)
    result = await session.exec(statement.returning(model.id))
    deleted = result.first() is not None
    await session.commit()
    return deleted
