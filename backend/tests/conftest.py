"""Test setup: one fresh database per run, built by the migrations; one transaction per test.

DATABASE_URL names the server (scripts/test.sh starts an embedded one when it is unset).
The tests create `app_test_<random>` on it, point the app there, and drop it at the end.
"""

import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from dotenv import dotenv_values

from tests.databases import on_server, url_for_database

ROOT_DIR = Path(__file__).resolve().parents[2]
if not os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = dotenv_values(ROOT_DIR / ".env").get("DATABASE_URL") or ""
if not os.environ["DATABASE_URL"]:
    raise pytest.UsageError(
        "DATABASE_URL is not set: run the tests with scripts/test.sh, which starts an "
        "embedded PostgreSQL, or point DATABASE_URL at a PostgreSQL server"
    )

# Light hashing for speed; production defaults stay at OWASP's minimum (see Settings).
os.environ.update(
    ARGON2_TIME_COST="1",
    ARGON2_MEMORY_COST="64",
    ENVIRONMENT="local",
    SECRET_KEY="test-secret-key-that-is-long-enough-for-hs256",
    SMTP_HOST="",
    LOGIN_MAX_FAILURES="10",
)

SERVER_URL = os.environ["DATABASE_URL"]
TEST_DATABASE = f"app_test_{secrets.token_hex(4)}"


os.environ["DATABASE_URL"] = url_for_database(SERVER_URL, TEST_DATABASE)

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from httpx import ASGITransport, AsyncClient  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402
from sqlmodel.ext.asyncio.session import AsyncSession  # noqa: E402

from app.api.deps import get_connections, get_session  # noqa: E402
from app.core.config import settings  # noqa: E402
from app.core.db import connections as app_connections  # noqa: E402
from app.core.db import engine as app_engine  # noqa: E402
from app.main import app  # noqa: E402
from tests import factories  # noqa: E402

API = settings.API_V1_STR


async def create_database(name: str) -> None:
    await on_server(SERVER_URL, f'CREATE DATABASE "{name}"')


async def drop_database(name: str) -> None:
    await on_server(SERVER_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT_DIR / "alembic.ini"))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    return config


async def run_alembic(url: str, action: Callable[[Config], Any]) -> None:
    """Alembic's env.py runs its own event loop, so it gets a worker thread."""
    import anyio

    await anyio.to_thread.run_sync(action, alembic_config(url))


@pytest.fixture(scope="session")
async def engine() -> AsyncIterator[AsyncEngine]:
    await create_database(TEST_DATABASE)
    try:
        await run_alembic(os.environ["DATABASE_URL"], lambda cfg: command.upgrade(cfg, "head"))
        yield app_engine
    finally:
        await app_connections.close()
        await app_engine.dispose()
        await drop_database(TEST_DATABASE)


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test; commits in
    routes and crud become savepoints."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        db = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield db
        finally:
            await db.close()
            await transaction.rollback()


class TestConnection:
    """The hot paths' connections in a test: the test's own, each use in a savepoint."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        connection = await self.session.connection()
        raw = (await connection.get_raw_connection()).driver_connection
        async with raw.transaction():
            yield raw


@pytest.fixture
async def client(session: AsyncSession) -> AsyncIterator[AsyncClient]:
    async def override_session() -> AsyncIterator[AsyncSession]:
        yield session

    async def override_connections() -> TestConnection:
        return TestConnection(session)

    app.dependency_overrides[get_session] = override_session
    app.dependency_overrides[get_connections] = override_connections
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
        yield http
    app.dependency_overrides.pop(get_session, None)
    app.dependency_overrides.pop(get_connections, None)


@pytest.fixture
async def committed_client(engine: AsyncEngine) -> AsyncIterator[AsyncClient]:
    """The app with its real sessions (for concurrency tests). Data it commits stays:
    tests using it create their own tenants and delete them at the end."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
        yield http


@pytest.fixture
def make(client: AsyncClient, session: AsyncSession) -> factories.Factories:
    return factories.Factories(client=client, session=session)
