"""The async engine and the per-request session; plain asyncpg connections for hot paths."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, cast

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
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


# The fast paths: plain asyncpg connections beside the ORM, for the hot requests that read
# or write one row. Statements are compiled once (see app/crud/common.py `Query`), asyncpg
# prepares each once per connection, and single statements run without BEGIN/COMMIT.


class ConnectionSource(Protocol):
    """Where `tenant_connection` takes its connection from."""

    def acquire(self) -> AbstractAsyncContextManager[asyncpg.Connection]: ...


class PoolSource:
    """An asyncpg pool of up to DB_POOL_SIZE connections per process, opened on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None

    async def _open(self) -> asyncpg.Pool:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self.pool is None:
                _, params = engine.dialect.create_connect_args(make_url(self.url))
                self.pool = await asyncpg.create_pool(
                    **params,
                    min_size=0,
                    max_size=settings.DB_POOL_SIZE,
                    timeout=settings.DB_CONNECT_TIMEOUT,
                    command_timeout=settings.DB_COMMAND_TIMEOUT,
                    server_settings={"application_name": settings.PROJECT_NAME[:63]},
                    reset=_rollback_only,
                )
        return self.pool

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        pool = self.pool or await self._open()
        async with asyncio.timeout(settings.DB_POOL_TIMEOUT):
            connection = await pool.acquire()
        try:
            yield cast(asyncpg.Connection, connection)  # a proxy with Connection's methods
        finally:
            await pool.release(connection)

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()


async def _rollback_only(_: asyncpg.Connection) -> None:
    """Released connections keep no session state: asyncpg's own step before this hook
    rolls back an unfinished transaction; the usual RESET ALL round trip is not needed."""


connections = PoolSource(require_database_url())


@asynccontextmanager
async def tenant_connection(
    source: ConnectionSource, *, tenant_id: uuid.UUID, cross_tenant: bool = False
) -> AsyncIterator[asyncpg.Connection]:
    """A connection for statements on behalf of `tenant_id` (all tenants: `cross_tenant`).

    Every hot-path statement goes through here, so per-tenant session settings are added
    in this one place: for row-level security, open the block with one simple-protocol
    round trip, `await connection.execute(f"BEGIN; SELECT set_config('app.tenant_id',
    '{tenant_id}', true), set_config('app.cross_tenant', '{'on' if cross_tenant else
    'off'}', true)")`, and end it with COMMIT (ROLLBACK when the block raises). Today each
    statement runs in its own implicit transaction and the statements filter on the tenant
    themselves: callers issue single statements, never BEGIN/ROLLBACK around reads. Errors
    are asyncpg's and OSError's (TimeoutError when no connection frees up in time).
    """
    del tenant_id, cross_tenant  # the statements filter on the tenant themselves
    async with source.acquire() as connection:
        yield connection
