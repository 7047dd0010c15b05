"""The async engine and the per-request session, plain asyncpg connections for hot paths,
and the tenant each may see (row-level security)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
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


# The fast paths: plain asyncpg connections beside the ORM, for the hot requests that read
# or write one row. Statements are compiled once (see app/crud/common.py `Query`), asyncpg
# prepares each once per connection, and single statements run without BEGIN/COMMIT.


class ConnectionSource(Protocol):
    """Where `tenant_connection` takes its connection from, with the tenant context
    (`tenant_context(...)`) in force for the statements run on it."""

    def acquire(
        self, context: dict[str, str]
    ) -> AbstractAsyncContextManager[asyncpg.Connection]: ...


# On the hot-path pool the context is a session setting of the connection, kept while it
# matches: a BEGIN/COMMIT pair around every single-statement request cost 15-24 % of the
# throughput (README, Performance). Safe because nothing reaches these connections but
# `PoolSource.acquire`, which makes the wanted context current before handing one out.
SET_SESSION_TENANT_CONTEXT = (
    "SELECT set_config('app.tenant_id', $1, false), set_config('app.cross_tenant', $2, false)"
)


class HotPathConnection(asyncpg.Connection):
    """A hot-path pool connection that remembers the tenant context its session carries."""

    tenant_context: tuple[str, str] | None = None

    async def use_tenant_context(self, context: dict[str, str]) -> None:
        """Make `context` the session's own: one statement when it differs, else none."""
        wanted = (context["tenant_id"], context["cross_tenant"])
        if self.tenant_context != wanted:
            self.tenant_context = None  # unknown until the statement succeeds
            await self.execute(SET_SESSION_TENANT_CONTEXT, *wanted)
            self.tenant_context = wanted


class PoolTimeout(TimeoutError):
    """Every hot-path connection stayed in use for DB_POOL_TIMEOUT seconds (a 503)."""


class PoolSource:
    """Up to DB_POOL_SIZE plain asyncpg connections per process, opened on demand and kept
    idle last-in first-out.

    Not asyncpg's `Pool`: it spends a task on every release (`asyncio.shield`), a timer
    on every acquire with a timeout, and a `RESET ALL` round trip unless told otherwise;
    under load on the one-statement hot paths that came to over half of what running the
    statement cost the process. Here a free connection costs no timer, no task and no
    statement; a connection comes back only when nothing can be half done on it (it is
    open, outside a transaction, and the block ended normally or with an error of the
    server's); anything else (a cancelled query, a lost socket) closes it.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._idle: list[HotPathConnection] = []
        self._slots: asyncio.Semaphore | None = None
        self._generation = 0  # bumped by close(): connections out at the time are dropped
        _, params = engine.dialect.create_connect_args(make_url(url))
        self._connect_params = dict(params)

    async def _connect(self) -> HotPathConnection:
        return await asyncpg.connect(
            **self._connect_params,
            timeout=settings.DB_CONNECT_TIMEOUT,
            command_timeout=settings.DB_COMMAND_TIMEOUT,
            server_settings={"application_name": settings.PROJECT_NAME[:63]},
            connection_class=HotPathConnection,
        )

    async def _checkout(self) -> HotPathConnection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.is_closed():
                return connection
        return await self._connect()

    @asynccontextmanager
    async def acquire(self, context: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(settings.DB_POOL_SIZE)
        slots = self._slots
        if slots.locked():  # every connection is out: wait, but not for ever
            try:
                async with asyncio.timeout(settings.DB_POOL_TIMEOUT):
                    await slots.acquire()
            except TimeoutError:
                raise PoolTimeout(
                    f"no database connection came free within {settings.DB_POOL_TIMEOUT} s"
                ) from None
        else:
            await slots.acquire()  # returns at once
        generation = self._generation
        reusable = False
        try:
            connection = await self._checkout()
            try:
                await connection.use_tenant_context(context)
                yield connection
                reusable = True
            except asyncpg.PostgresError:  # refused by the server: the connection is fine
                reusable = True
                raise
            finally:
                if (
                    reusable
                    and generation == self._generation
                    and not connection.is_closed()
                    and not connection.is_in_transaction()
                ):
                    self._idle.append(connection)
                else:
                    connection.terminate()
        finally:
            slots.release()

    async def close(self) -> None:
        """Close the idle connections; those in use close when they come back. A later
        acquire opens new ones."""
        self._generation += 1
        self._slots = None  # the next acquire may run on another event loop (tests)
        idle, self._idle = self._idle, []
        await asyncio.gather(
            *(connection.close(timeout=5) for connection in idle), return_exceptions=True
        )


connections = PoolSource(require_database_url())


@asynccontextmanager
async def tenant_connection(
    source: ConnectionSource, *, tenant_id: uuid.UUID, cross_tenant: bool = False
) -> AsyncIterator[asyncpg.Connection]:
    """A connection that sees `tenant_id`'s rows only (every tenant's: `cross_tenant`),
    under row-level security: the same two settings as the ORM sessions, made current on
    the connection before the block runs (no statement when it already carries them).
    Every hot-path statement goes through here; each runs in its own implicit transaction.
    Errors are asyncpg's and OSError's (PoolTimeout when no connection frees up).
    """
    async with source.acquire(
        tenant_context(tenant_id=tenant_id, cross_tenant=cross_tenant)
    ) as connection:
        yield connection
