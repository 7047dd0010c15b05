"""The async engine, the per-request session, and the tenant it may see (row-level security)."""

import uuid
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, SessionTransaction
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import settings


def make_engine(url: str) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_MAX_OVERFLOW,
        pool_timeout=settings.DB_POOL_TIMEOUT,
        pool_pre_ping=settings.DB_POOL_PRE_PING,
        connect_args={
            "timeout": settings.DB_CONNECT_TIMEOUT,
            "command_timeout": settings.DB_COMMAND_TIMEOUT,
            "server_settings": {"application_name": settings.PROJECT_NAME[:63]},
        },
    )


def require_database_url() -> str:
    if not settings.DATABASE_URL:
        raise SystemExit(
            "Configuration error: DATABASE_URL is not set "
            "(scripts/run.sh starts an embedded PostgreSQL when it is unset)"
        )
    return settings.DATABASE_URL


engine = make_engine(require_database_url())
SessionMaker = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


# Row-level security (migration 2026_12_03_0800): the policies read two transaction-local
# settings. `app.tenant_id` confines every tenant-owned row to one tenant; `app.cross_tenant`
# = 'on' is the narrow, explicit path across tenants (superusers, login by email, signup,
# password recovery, refresh-token rotation, seeding, background jobs). Unset: no rows.
TENANT_CONTEXT = "tenant_context"
SET_TENANT_CONTEXT = text(
    "SELECT set_config('app.tenant_id', :tenant_id, true),"
    " set_config('app.cross_tenant', :cross_tenant, true)"
)


def tenant_context(*, tenant_id: uuid.UUID | None, cross_tenant: bool) -> dict[str, str]:
    """The parameters of SET_TENANT_CONTEXT (for a raw connection: one statement, both settings)."""
    return {
        "tenant_id": str(tenant_id) if tenant_id is not None else "",
        "cross_tenant": "on" if cross_tenant else "off",
    }


async def set_tenant_context(
    session: AsyncSession, *, tenant_id: uuid.UUID | None, cross_tenant: bool = False
) -> None:
    """Let the database show this session one tenant's rows, or (cross_tenant) every tenant's.

    Kept on the session and applied at the start of each transaction it opens, in one
    statement, so a commit halfway through a request does not drop it; in a transaction
    already open it applies at once.
    """
    params = tenant_context(tenant_id=tenant_id, cross_tenant=cross_tenant)
    session.info[TENANT_CONTEXT] = params
    if session.in_transaction():
        connection = await session.connection()
        await connection.execute(SET_TENANT_CONTEXT, params)


@event.listens_for(Session, "after_begin")
def _apply_tenant_context(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    params: dict[str, Any] | None = session.info.get(TENANT_CONTEXT)
    # A savepoint inherits the settings of the transaction around it.
    if params is not None and not transaction.nested:
        connection.execute(SET_TENANT_CONTEXT, params)
