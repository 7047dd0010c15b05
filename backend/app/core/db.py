"""The async engine and the per-request session."""

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
