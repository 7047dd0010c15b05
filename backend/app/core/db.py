"""The async engine, its sessions, and the tenant each may see (row-level security).

Every route, job and script reaches the database through `SessionMaker`: one pool per
process (SQLAlchemy's), one transaction per request, the tenant context local to it.
"""

import uuid
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import settings


class TenantContextConnection(asyncpg.Connection):
    """An asyncpg connection that sends a pending tenant context with the transaction's
    BEGIN, as one simple query of two statements: the settings cost no round trip."""

    pending_context: str | None = None

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109 (asyncpg's signature)
        pending = self.pending_context
        if pending is not None and not args and query.startswith("BEGIN"):
            self.pending_context = None
            query = f"{query} {pending}"
        status: str = await super().execute(query, *args, timeout=timeout)
        return status


def make_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_MAX_OVERFLOW,
        pool_timeout=settings.DB_POOL_TIMEOUT,
        pool_pre_ping=settings.DB_POOL_PRE_PING,
        connect_args={
            **settings.statement_caches,
            "timeout": settings.DB_CONNECT_TIMEOUT,
            "command_timeout": settings.DB_COMMAND_TIMEOUT,
            "server_settings": {"application_name": settings.PROJECT_NAME[:63]},
            "connection_class": TenantContextConnection,
        },
    )
    event.listen(engine.sync_engine, "checkin", _drop_pending_context)
    return engine


def _drop_pending_context(_: Any, record: ConnectionPoolEntry) -> None:
    """A context stashed for a BEGIN that never came stays with its session, not the pool."""
    if isinstance(record.driver_connection, TenantContextConnection):
        record.driver_connection.pending_context = None


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


def tenant_context_sql(params: dict[str, str]) -> str:
    """SET_TENANT_CONTEXT with its values inlined, to follow a BEGIN in one simple query.
    Safe to inline: a UUID's canonical text (or nothing) and on/off, checked here."""
    tenant_id = str(uuid.UUID(params["tenant_id"])) if params["tenant_id"] else ""
    cross_tenant = "on" if params["cross_tenant"] == "on" else "off"
    return (
        f"SELECT set_config('app.tenant_id', '{tenant_id}', true),"
        f" set_config('app.cross_tenant', '{cross_tenant}', true)"
    )


async def set_tenant_context(
    session: AsyncSession, *, tenant_id: uuid.UUID | None, cross_tenant: bool = False
) -> None:
    """Let the database show this session one tenant's rows, or (cross_tenant) every tenant's.

    Kept on the session and applied at the start of each transaction it opens (sent with
    its BEGIN, no round trip of its own), so a commit halfway through a request does not
    drop it; in a transaction already open it applies at once, in one statement.
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
    params: dict[str, str] | None = session.info.get(TENANT_CONTEXT)
    # A savepoint inherits the settings of the transaction around it.
    if params is None or transaction.nested:
        return
    driver = connection.connection.driver_connection
    if isinstance(driver, TenantContextConnection) and not driver.is_in_transaction():
        # The BEGIN has not gone out yet (asyncpg sends it with the first statement).
        driver.pending_context = tenant_context_sql(params)
    else:
        connection.execute(SET_TENANT_CONTEXT, params)
