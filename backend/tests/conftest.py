"""Test setup: one fresh database per run, built by the migrations; one transaction per test.

DATABASE_URL names the server (scripts/test.sh starts an embedded one when it is unset).
The tests create `app_test_<random>` on it, point the app there, and drop it at the end.

Two roles, as in production: the migrations run as the owner (MIGRATIONS_DATABASE_URL when
set, else DATABASE_URL's role); the app connects as the service role (DATABASE_URL's role
when MIGRATIONS_DATABASE_URL is set, else `app_service`, created here when missing), so
row-level security binds every test.
"""

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values
from sqlalchemy.engine import make_url

from app.core import roles
from tests.databases import on_server, url_for_database

ROOT_DIR = Path(__file__).resolve().parents[2]
for name in ("DATABASE_URL", "MIGRATIONS_DATABASE_URL"):
    if not os.environ.get(name):
        os.environ[name] = dotenv_values(ROOT_DIR / ".env").get(name) or ""
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
    LOGIN_MAX_FAILURES_PER_ADDRESS="100",
    # Every test signs up from one address: tests of these limits lower them.
    SIGNUP_MAX_PER_EMAIL="1000",
    SIGNUP_MAX_PER_ADDRESS="100000",
    PASSWORD_RECOVERY_MAX_PER_EMAIL="1000",
    PASSWORD_RECOVERY_MAX_PER_ADDRESS="100000",
    FORWARDED_ALLOW_IPS="",
)

# The owner's URL (it creates and drops the databases) and the service role's.
SERVER_URL = os.environ["MIGRATIONS_DATABASE_URL"] or os.environ["DATABASE_URL"]
SERVICE_SERVER_URL = (
    os.environ["DATABASE_URL"]
    if os.environ["MIGRATIONS_DATABASE_URL"]
    else roles.service_url_for(SERVER_URL)
)
SERVICE_ROLE = make_url(SERVICE_SERVER_URL).username
TEST_DATABASE = f"app_test_{secrets.token_hex(4)}"
OWNER_URL = url_for_database(SERVER_URL, TEST_DATABASE)

os.environ["DATABASE_URL"] = url_for_database(SERVICE_SERVER_URL, TEST_DATABASE)
os.environ["MIGRATIONS_DATABASE_URL"] = OWNER_URL

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from httpx import ASGITransport, AsyncClient  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402
from sqlmodel.ext.asyncio.session import AsyncSession  # noqa: E402

from app import jobs  # noqa: E402
from app.api.deps import get_session  # noqa: E402
from app.core.config import settings  # noqa: E402
from app.core.db import engine as app_engine  # noqa: E402
from app.core.db import set_tenant_context  # noqa: E402
from app.main import app  # noqa: E402
from tests import factories  # noqa: E402
from tests.mail import WAIT_SECONDS, Outbox, Sink  # noqa: E402

API = settings.API_V1_STR


async def create_database(name: str) -> None:
    await on_server(SERVER_URL, f'CREATE DATABASE "{name}"')


async def drop_database(name: str) -> None:
    await on_server(SERVER_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT_DIR / "alembic.ini"))
    config.attributes["url"] = url
    config.attributes["service_role"] = SERVICE_ROLE
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
        await roles.ensure_service_role(OWNER_URL, os.environ["DATABASE_URL"])
        await run_alembic(OWNER_URL, lambda cfg: command.upgrade(cfg, "head"))
        yield app_engine
    finally:
        await app_engine.dispose()
        await drop_database(TEST_DATABASE)


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test; commits in
    routes and crud become savepoints. The test's own queries see every tenant (like a
    background job); each request through `client` gets the app's own tenant context."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        db = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        await set_tenant_context(db, tenant_id=None, cross_tenant=True)
        try:
            yield db
        finally:
            await db.close()
            await transaction.rollback()


@pytest.fixture
async def client(session: AsyncSession) -> AsyncIterator[AsyncClient]:
    async def override_session() -> AsyncIterator[AsyncSession]:
        # Like a fresh session: a transaction of its own (a savepoint) with no tenant until
        # the request sets one; then back to the test's own context. Ending the savepoint
        # keeps the data; the next one applies the context (core/db.py, after_begin).
        await session.commit()
        await set_tenant_context(session, tenant_id=None, cross_tenant=False)
        try:
            yield session
        finally:
            try:
                await session.commit()
            except SQLAlchemyError:  # the request failed in the database
                await session.rollback()
            await set_tenant_context(session, tenant_id=None, cross_tenant=True)

    app.dependency_overrides[get_session] = override_session
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
        yield http
    app.dependency_overrides.pop(get_session, None)


@pytest.fixture
async def committed_client(engine: AsyncEngine) -> AsyncIterator[AsyncClient]:
    """The app with its real sessions (for concurrency tests). Data it commits stays:
    tests using it create their own tenants and delete them at the end."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
        yield http


@pytest.fixture
def make(client: AsyncClient, session: AsyncSession) -> factories.Factories:
    return factories.Factories(client=client, session=session)


@pytest.fixture
async def outbox(session: AsyncSession) -> Outbox:
    """The emails the test's requests enqueued (rolled back with the test)."""
    return await Outbox(session).start()


@pytest.fixture
async def sink(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sink]:
    """An SMTP sink the app is pointed at (not started: each test decides when)."""
    box = Sink()
    monkeypatch.setattr(settings, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setattr(settings, "SMTP_PORT", box.port)
    monkeypatch.setattr(settings, "SMTP_TLS", False)
    monkeypatch.setattr(settings, "SMTP_TIMEOUT", 5.0)
    yield box
    box.stop()


@pytest.fixture
async def queue(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Short delays for these tests only; the queue is emptied afterwards."""
    monkeypatch.setattr(settings, "JOB_RETRY_DELAY_SECONDS", 0.2)
    monkeypatch.setattr(settings, "JOB_HEARTBEAT_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(settings, "JOB_POLL_SECONDS", 1.0)
    yield
    async with app_engine.begin() as connection:
        await connection.execute(text("DELETE FROM pgqueuer"))


@pytest.fixture
async def worker(queue: None) -> AsyncIterator[None]:
    """The in-process worker, as the service's lifespan runs it."""
    stop = asyncio.Event()
    task = asyncio.create_task(jobs.run_worker(stop))
    yield
    stop.set()
    await asyncio.wait_for(task, WAIT_SECONDS)
