"""Helpers every crud module uses: conflicts, pages, text search, versioned writes."""

from typing import Any, TypeVar, cast

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.compiler import SQLCompiler
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


def contains(column: Any, text: str | sa.BindParameter[str]) -> Any:
    """Case-insensitive substring match with `%`, `_` and `\\` taken literally."""
    if isinstance(text, sa.BindParameter):  # the pattern is bound later: `like_pattern`
        return col(column).ilike(text, escape="\\")
    return col(column).ilike(like_pattern(text), escape="\\")


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


# Fast paths: Core statements compiled once for asyncpg and run on a plain connection
# (app.core.db.tenant_connection); rows come back as dicts for the Public models.

_ASYNCPG = postgresql_asyncpg.dialect()  # type: ignore[no-untyped-call]


class Query:
    """A statement compiled once: its SQL and the bound parameters' order."""

    __slots__ = ("fixed", "names", "sql")

    def __init__(self, statement: sa.ClauseElement) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=_ASYNCPG))
        self.sql = str(compiled)
        self.names = tuple(compiled.positiontup or ())
        # Values the statement carries itself (e.g. the 1 of `version + 1`).
        self.fixed = {name: value for name, value in compiled.params.items() if value is not None}

    def args(self, values: dict[str, Any]) -> list[Any]:
        fixed = self.fixed
        return [values[name] if name in values else fixed[name] for name in self.names]

    async def fetch(self, conn: asyncpg.Connection, **values: Any) -> list[asyncpg.Record]:
        return await conn.fetch(self.sql, *self.args(values))

    async def fetchrow(self, conn: asyncpg.Connection, **values: Any) -> asyncpg.Record | None:
        return await conn.fetchrow(self.sql, *self.args(values))

    async def fetchval(self, conn: asyncpg.Connection, **values: Any) -> Any:
        return await conn.fetchval(self.sql, *self.args(values))


def param(name: str) -> Any:
    return sa.bindparam(name)


def columns_of(model: Any) -> tuple[sa.Column[Any], ...]:
    return tuple(model.__table__.c)


def like_pattern(text: str) -> str:
    """The ILIKE pattern of `contains`: `%`, `_` and `\\` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def violated_constraint_of(exc: asyncpg.IntegrityConstraintViolationError) -> str | None:
    return getattr(exc, "constraint_name", None)
